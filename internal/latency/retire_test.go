package latency

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer"
)

// TestRetireRealHostCgroup: a process runs in a new host cgroup, the cgroup
// is removed, and one refresh deletes its entries from the kernel maps while
// the host's figures keep its syscalls.
func TestRetireRealHostCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	// Every syscall timed: the helper's few syscalls are all in the kernel's figures.
	l, tr := startLatency(t, "none", tracer.Options{Sensors: []string{tracer.SensorLatency}})

	// The cgroup is made after the resolver's walk, and no cgroup sensor runs
	// here: the resolver learns that it is gone from the kernel (its handle).
	var b [8]byte
	rand.Read(b[:])
	dir := filepath.Join(testenv.Cgroup2Mount(t), "observer-retire-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	cg := st.Ino
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = cmd.Run()
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; os.Remove(dir) != nil; i++ { // the exited child is reaped asynchronously
		if i == 100 {
			t.Fatalf("cgroup %s not removable", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Contains(tr.MeasuredCgroups(), cg) {
		t.Fatalf("cgroup %d not measured", cg)
	}

	hostCalls := func() uint64 {
		var n uint64
		for _, c := range l.Report().Containers {
			if c.ID == "" {
				for _, m := range c.Seccomp {
					n += m.Calls
				}
			}
		}
		return n
	}
	before := hostCalls()
	l.refresh()
	if slices.Contains(tr.MeasuredCgroups(), cg) {
		t.Errorf("removed host cgroup %d still in the kernel maps after a refresh", cg)
	}
	if after := hostCalls(); after < before {
		t.Errorf("host syscalls went down from %d to %d when the cgroup was retired", before, after)
	}
}
