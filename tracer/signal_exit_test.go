package tracer

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

// exitHelperEnv makes the test binary a daemon whose leader thread exits
// first: the process lives on in another thread, which then exits the whole
// group with the code in the variable.
const exitHelperEnv = "OBSERVER_LEADER_EXIT_HELPER"

// The helper runs from init: there the main goroutine is locked to the main
// (leader) thread, so exiting the current thread exits the leader.
func init() {
	spec := os.Getenv(exitHelperEnv)
	if spec == "" {
		return
	}
	code, err := strconv.Atoi(spec)
	if err != nil {
		os.Exit(2)
	}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(started)
		// A raw sleep, not a Go timer: the leader's P is never released.
		ts := unix.NsecToTimespec(int64(300 * time.Millisecond))
		for unix.Nanosleep(&ts, &ts) == unix.EINTR {
		}
		unix.Exit(code) // exit_group
	}()
	<-started
	unix.RawSyscall(unix.SYS_EXIT, 0, 0, 0) // this thread only
}

// TestDaemonExitWhenLastThreadExits: a watched daemon whose leader thread
// exits first is reported once, when its last thread exits, with the code its
// parent sees; never as dead (exit 0) when the leader goes.
func TestDaemonExitWhenLastThreadExits(t *testing.T) {
	requireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "dockerd") // comm comes from the name exec'd
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ModeTPBTF, ModeTracepoint} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSignal, mode, Options{})
			if tr == nil {
				return
			}
			cmd := exec.Command(bin)
			// Two Ps at least: the dead leader thread keeps one forever.
			cmd.Env = append(os.Environ(), exitHelperEnv+"=3", "GOMAXPROCS=4")
			err := cmd.Run()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Exited() || ws.ExitStatus() != 3 {
				t.Fatalf("helper: %v, want exit status 3", err)
			}
			pid := uint32(cmd.Process.Pid)
			exit := waitEvent(t, tr, func(ev event.Event) bool {
				e, ok := ev.(*event.DaemonExit)
				return ok && e.PID == pid
			}).(*event.DaemonExit)
			if exit.ExitCode != 3 || exit.Signal != "" || exit.Comm != "dockerd" {
				t.Errorf("daemon_exit = %+v, want exit code 3 from dockerd", exit)
			}
			if exit.TID == pid {
				t.Errorf("daemon_exit came from the leader thread (tid %d), which exited first", exit.TID)
			}
			// Exactly one: nothing more for this pid.
			idle := time.After(time.Second)
			for {
				select {
				case ev := <-tr.Events():
					if e, ok := ev.(*event.DaemonExit); ok && e.PID == pid {
						t.Fatalf("second daemon_exit for pid %d: %+v (first %+v)", pid, e, exit)
					}
					continue
				case <-idle:
				}
				break
			}
		})
	}
}
