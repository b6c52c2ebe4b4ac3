package testenv_test

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/testenv"
)

func TestContainerCgroupHasID(t *testing.T) {
	res := testenv.RunContainer(t, testenv.ContainerOptions{}, "cat /proc/self/cgroup")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d, output:\n%s", res.ExitCode, res.Output)
	}
	if !strings.Contains(res.Output, "/docker/"+res.ID) {
		t.Fatalf("cgroup path does not contain /docker/%s:\n%s", res.ID, res.Output)
	}
	testenv.Result(t, map[string]any{"test": "container_cgroup", "ok": true})
}

func TestContainerMoveLowerDir(t *testing.T) {
	opts := testenv.ContainerOptions{Lower: map[string]string{
		"data/src/":     "",
		"data/src/file": "hello\n",
	}}
	c := testenv.NewContainer(t, opts)
	res, err := c.Run(t.Context(), "mv /data/src /data/dst && cat /data/dst/file && ! test -e /data/src")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Output, "hello") {
		t.Fatalf("exit %d, output:\n%s", res.ExitCode, res.Output)
	}
}

func TestContainerSmallUpperAndMountOptions(t *testing.T) {
	c := testenv.NewContainer(t, testenv.ContainerOptions{
		MountOptions: []string{"metacopy=on"},
		UpperSize:    4 << 20,
		Lower:        map[string]string{"f": "x"},
	})
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var overlayLine string
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " "+c.Merged+" ") {
			overlayLine = l
		}
	}
	if !strings.Contains(overlayLine, "metacopy=on") || !strings.Contains(overlayLine, "upperdir="+c.Upper) {
		t.Errorf("overlay mount lacks metacopy=on or the tmpfs upper %s:\n%s", c.Upper, overlayLine)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(c.Upper, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type != unix.TMPFS_MAGIC || fs.Blocks*uint64(fs.Bsize) != 4<<20 {
		t.Errorf("upper on fs type %#x of %d bytes, want a 4 MiB tmpfs", fs.Type, fs.Blocks*uint64(fs.Bsize))
	}
	res := testenv.RunContainer(t, testenv.ContainerOptions{UpperSize: 1 << 20}, "dd if=/dev/zero of=/fill bs=1024 count=2048")
	if res.ExitCode == 0 || !strings.Contains(res.Output, "No space left") {
		t.Errorf("writing 2 MiB over a 1 MiB upper: exit %d %q, want ENOSPC", res.ExitCode, res.Output)
	}
}

// TestContainerSeccomp: with Seccomp the container's process runs under a
// filter (Seccomp: 2 in /proc/self/status); without, under none.
func TestContainerSeccomp(t *testing.T) {
	for _, c := range []struct {
		seccomp bool
		want    string
	}{{true, "Seccomp:\t2"}, {false, "Seccomp:\t0"}} {
		res := testenv.RunContainer(t, testenv.ContainerOptions{Seccomp: c.seccomp}, "grep Seccomp: /proc/self/status")
		if res.ExitCode != 0 || !strings.Contains(res.Output, c.want) {
			t.Errorf("Seccomp %v: exit %d, output %q, want %q", c.seccomp, res.ExitCode, res.Output, c.want)
		}
	}
}
