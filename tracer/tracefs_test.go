package tracer

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer/tracefs"
)

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
	if left := tracingMounts(t); len(left) > 0 || tracefs.Present() {
		t.Fatalf("tracefs or debugfs still mounted after unmounting: %v", left)
	}
	tr := startSensor(t, SensorRename, ModeTracepoint, Options{})
	if tr == nil {
		t.Fatal("rename in tracepoint mode did not attach with tracefs unmounted")
	}
	if !tracefs.Present() {
		t.Fatal("tracepoint mode attached, yet no tracefs is mounted")
	}
	testRenameExdev(t, tr)
}

func tracingMounts(t *testing.T) []string {
	mps, err := tracefs.TracingMounts()
	if err != nil {
		t.Fatal(err)
	}
	return mps
}
