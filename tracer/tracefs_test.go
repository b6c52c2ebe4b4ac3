package tracer

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/testenv"
)

func TestMountinfoType(t *testing.T) {
	for line, want := range map[string]string{
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":                  "ext3",
		"40 23 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:19 - tracefs tracefs rw": "tracefs",
		"41 23 0:13 / /sys/kernel/debug rw,relatime - debugfs debugfs rw":                                 "debugfs",
		"garbage":         "",
		"1 2 3 4 5 6 7 -": "",
	} {
		if got := mountinfoType(line); got != want {
			t.Errorf("mountinfoType(%q) = %q, want %q", line, got, want)
		}
	}
}

// The child half of TestTracefsMountedWhenMissing runs in its own mount
// namespace, where it removes every tracefs and debugfs mount.
const tracefsChildEnv = "OBSERVER_TEST_TRACEFS_CHILD"

// TestTracefsMountedWhenMissing proves that the tracepoint mode does not depend
// on how the machine was prepared: with no tracefs and no debugfs mounted, the
// tracer mounts tracefs itself, and rename in tracepoint mode attaches and
// reports a real EXDEV. It runs in a child process with a private mount
// namespace, because cilium/ebpf looks for tracefs once per process, and so
// that the host's mounts stay as they are.
func TestTracefsMountedWhenMissing(t *testing.T) {
	requireRoot(t)
	if os.Getenv(tracefsChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestTracefsMountedWhenMissing$", "-test.v", "-test.count=1")
		// The child's attach result is not one of the kernel matrix's rows.
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, testenv.EnvResultsFile+"=")
		}), tracefsChildEnv+"=1")
		// Go makes the new namespace's mounts private before exec.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestTracefsMountedWhenMissing") {
			// Without its result lines, which the VM harness would collect twice.
			var keep []string
			for _, l := range strings.Split(string(out), "\n") {
				if !strings.Contains(l, testenv.ResultPrefix) {
					keep = append(keep, l)
				}
			}
			t.Fatalf("child test did not pass (%v):\n%s", err, strings.Join(keep, "\n"))
		}
		if !strings.Contains(string(out), "mounted it for the tracepoint attach mode") {
			t.Error("the child mounted tracefs without logging it")
		}
		return
	}

	for _, mp := range tracingMounts(t) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s in the private namespace: %v", mp, err)
		}
	}
	if left := tracingMounts(t); len(left) > 0 || tracefsPresent() {
		t.Fatalf("tracefs or debugfs still mounted after unmounting: %v", left)
	}
	tr := startSensor(t, SensorRename, ModeTracepoint, Options{})
	if tr == nil {
		t.Fatal("rename in tracepoint mode did not attach with tracefs unmounted")
	}
	if !slices.ContainsFunc(readMountinfo(t), func(l string) bool { return mountinfoType(l) == "tracefs" }) {
		t.Fatal("tracepoint mode attached, yet no tracefs is mounted")
	}
	testRenameExdev(t, tr)
}

// tracingMounts lists tracefs and debugfs mount points, innermost first.
func tracingMounts(t *testing.T) []string {
	var mps []string
	for _, l := range readMountinfo(t) {
		if fs := mountinfoType(l); fs == "tracefs" || fs == "debugfs" {
			mps = append(mps, strings.Fields(l)[4])
		}
	}
	slices.Reverse(mps)
	return mps
}

func readMountinfo(t *testing.T) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
