package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/testenv"
)

// These tests load real BPF programs into the running kernel. They run as root on
// the host and, through `make vmtest`, inside QEMU guests with stock kernels.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
}

// requestedDefault is the "requested" value of a result for a sensor started
// without forcing a mode: the mode it got is the one the daemon would pick.
const requestedDefault = "default"

// startSensor starts one sensor forced into one mode ("" = not forced, best
// available). It returns nil when the kernel refused, after checking the
// refusal carries a reason and agrees with what this kernel is expected to
// offer, and prints the result for the kernel matrix table.
func startSensor(t *testing.T, sensor string, mode Mode, opts Options) *Tracer {
	t.Helper()
	opts.Sensors = append([]string{sensor}, opts.Sensors...)
	if mode != "" {
		opts.Attach = map[string]Mode{sensor: mode}
	}
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		tr.Close()
	})
	startErr := tr.Start(ctx)
	st, ok := statusOf(tr, sensor)
	if !ok {
		t.Fatalf("status = %+v, lacks sensor %s", tr.Status(), sensor)
	}
	reportMatrix(t, sensor, mode, st)
	if mode == "" {
		return tr // TestDefaultModes checks which mode it got
	}
	offered, known := kernelOffers(t, sensor, mode)
	if st.Mode == "" {
		if st.Unavailable == "" || (startErr == nil && len(opts.Sensors) == 1) {
			t.Fatalf("sensor %s in mode %s neither attached nor gave a reason: %+v (start: %v)", sensor, mode, st, startErr)
		}
		if offered {
			t.Fatalf("this kernel offers %s, yet the sensor is unavailable: %s", mode, st.Unavailable)
		}
		t.Logf("%s/%s unavailable here, as expected: %s", sensor, mode, st.Unavailable)
		return nil
	}
	if st.Mode != string(mode) {
		t.Fatalf("forced %s, got %s", mode, st.Mode)
	}
	if known && !offered {
		t.Fatalf("%s attached in mode %s, which %s says this kernel lacks: fix the file", sensor, mode, testenv.ModesFile)
	}
	return tr
}

func statusOf(tr *Tracer, name string) (sensor.Status, bool) {
	for _, st := range tr.Status() {
		if st.Name == name {
			return st, true
		}
	}
	return sensor.Status{}, false
}

// kernelOffers says whether this kernel offers a mode. The expectations file
// (testdata/vmtest/modes.txt) decides when it has a row for this kernel; else
// facts that do not depend on the observer do (known = false for fentry,
// which has no independent probe).
func kernelOffers(t *testing.T, sensorName string, mode Mode) (offered, known bool) {
	t.Helper()
	modes, ok, err := testenv.ExpectedSensorModes(sensorName)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		return slices.Contains(modes, string(mode)), true
	}
	switch mode {
	case ModeTracepoint, ModeTPBTF, ModeRawTP, ModeTailCall:
		return true, true
	case ModeKprobe:
		return haveKprobes(), true
	}
	t.Logf("no row in %s for this kernel (%s): %s is not asserted", testenv.ModesFile, kernelRelease(), mode)
	return false, false
}

// reportMatrix prints the mode a sensor got, for the kernel matrix table.
func reportMatrix(t *testing.T, sensor string, requested Mode, st sensor.Status) {
	req := string(requested)
	if req == "" {
		req = requestedDefault
	}
	testenv.Result(t, map[string]string{
		"kernel":      kernelRelease(),
		"vm":          testenv.VMKernel(),
		"test":        t.Name(),
		"sensor":      sensor,
		"requested":   req,
		"mode":        st.Mode,
		"variant":     st.Variant,
		"unavailable": st.Unavailable,
	})
}

func kernelRelease() string { return testenv.KernelRelease() }

// TestDefaultModes starts each sensor without forcing a mode: it must get the
// best mode this kernel offers. Its results give the README table's first mode.
func TestDefaultModes(t *testing.T) {
	requireRoot(t)
	for _, def := range sensors() {
		t.Run(def.name, func(t *testing.T) {
			// As the daemon runs it: the latency sensor too, for tail_call.
			var opts Options
			if slices.Contains(def.modes, ModeTailCall) {
				opts = modeOptions(ModeTailCall, opts)
			}
			tr := startSensor(t, def.name, "", opts)
			st, _ := statusOf(tr, def.name)
			var want Mode
			for _, m := range def.modes {
				offered, known := kernelOffers(t, def.name, m)
				if !known {
					// Unknown fentry: whatever it got must be one of its modes.
					if !slices.Contains(def.modes, Mode(st.Mode)) {
						t.Fatalf("default mode %q (unavailable: %s) is not one of %v", st.Mode, st.Unavailable, def.modes)
					}
					return
				}
				if offered {
					want = m
					break
				}
			}
			if want == "" {
				if st.Mode != "" || st.Unavailable == "" {
					t.Fatalf("kernel offers none of %v, yet status = %+v", def.modes, st)
				}
				return
			}
			if Mode(st.Mode) != want {
				t.Fatalf("default mode = %q (unavailable: %s), want %s, the best this kernel offers", st.Mode, st.Unavailable, want)
			}
		})
	}
}

// waitEvent returns the first event that matches, or fails after a timeout.
func waitEvent(t *testing.T, tr *Tracer, match func(event.Event) bool) event.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-tr.Events():
			if !ok {
				t.Fatal("events channel closed")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no matching event within 10s; status: %+v", tr.Status())
		}
	}
}

// overlay mounts a real overlayfs whose lower layer holds directory "dir".
func overlay(t *testing.T) (merged string) {
	t.Helper()
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	merged = filepath.Join(base, "merged")
	for _, d := range []string{filepath.Join(lower, "dir"), upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "dir", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// redirect_dir=off makes the kernel refuse directory renames with EXDEV, as
	// Docker's overlay2 does on kernels built without redirect_dir by default.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlayfs here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}

// renameModes are the rename sensor's modes: its tests run in each one the kernel offers.
var renameModes = []Mode{ModeFentry, ModeKprobe, ModeTailCall, ModeTracepoint}

func TestRenameExdev(t *testing.T) {
	requireRoot(t)
	for _, mode := range renameModes {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorRename, mode, modeOptions(mode, Options{}))
			if tr == nil {
				return
			}
			testRenameExdev(t, tr)
		})
	}
}

// testRenameExdev makes two renames fail with EXDEV on a real overlay and one
// succeed, and expects exactly the two failures reported, with their paths and flags.
func testRenameExdev(t *testing.T, tr *Tracer) {
	merged := overlay(t)
	oldPath, newPath := filepath.Join(merged, "dir"), filepath.Join(merged, "moved")

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != unix.EXDEV {
		t.Fatalf("renameat2 on overlay: %v, want EXDEV", err)
	}
	// A rename that succeeds must not produce an event.
	okOld, okNew := filepath.Join(t.TempDir(), "a"), ""
	okNew = okOld + "b"
	os.WriteFile(okOld, nil, 0o644)
	if err := os.Rename(okOld, okNew); err != nil {
		t.Fatal(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE); err != unix.EXDEV {
		t.Fatalf("second renameat2: %v, want EXDEV", err)
	}

	var got []*event.RenameExdev
	for len(got) < 2 {
		ev := waitEvent(t, tr, func(ev event.Event) bool {
			r, ok := ev.(*event.RenameExdev)
			return ok && r.PID == uint32(os.Getpid())
		})
		got = append(got, ev.(*event.RenameExdev))
	}
	for i, r := range got {
		if r.OldPath != oldPath || r.NewPath != newPath {
			t.Errorf("event %d paths = %q -> %q, want %q -> %q", i, r.OldPath, r.NewPath, oldPath, newPath)
		}
		if r.TID != uint32(tid) || r.Type != event.TypeRenameExdev || r.CgroupID == 0 || r.Comm == "" {
			t.Errorf("event %d header = %+v, want tid %d, a cgroup and a comm", i, r.Header, tid)
		}
		if time.Since(r.Time) > time.Minute || time.Since(r.Time) < 0 {
			t.Errorf("event %d time %v is not now", i, r.Time)
		}
	}
	if got[0].Flags != 0 || got[1].Flags != unix.RENAME_NOREPLACE {
		t.Errorf("flags = %d, %d; want 0, %d", got[0].Flags, got[1].Flags, unix.RENAME_NOREPLACE)
	}
}

func TestSignalToWatchedDaemon(t *testing.T) {
	requireRoot(t)
	for _, mode := range []Mode{ModeTPBTF, ModeTracepoint} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSignal, mode, Options{})
			if tr == nil {
				return
			}
			pid := testenv.SIGPIPEDaemon(t)

			sig := waitEvent(t, tr, func(ev event.Event) bool {
				s, ok := ev.(*event.Signal)
				return ok && s.TargetPID == pid
			}).(*event.Signal)
			if sig.Signal != "SIGPIPE" || sig.Signo != 13 || sig.TargetComm != "dockerd" || sig.Result != "delivered" {
				t.Errorf("signal event = %+v", sig)
			}
			// The kernel raises SIGPIPE in the writer's own context.
			if sig.SenderPID != pid || sig.SenderComm != "dockerd" {
				t.Errorf("sender = %d/%q, want the helper itself", sig.SenderPID, sig.SenderComm)
			}
			wantDisp := "default"
			if mode == ModeTracepoint {
				wantDisp = "unknown" // the classic record carries no task to read it from
			}
			if sig.Disposition != wantDisp {
				t.Errorf("disposition = %q, want %q", sig.Disposition, wantDisp)
			}

			exit := waitEvent(t, tr, func(ev event.Event) bool {
				e, ok := ev.(*event.DaemonExit)
				return ok && e.PID == pid
			}).(*event.DaemonExit)
			if exit.Signal != "SIGPIPE" || exit.Comm != "dockerd" || exit.ExitCode != 0 {
				t.Errorf("daemon_exit = %+v, want SIGPIPE", exit)
			}
		})
	}
}

func TestSignalIgnoresUnwatchedAndNonFatal(t *testing.T) {
	requireRoot(t)
	tr := startSensor(t, SensorSignal, ModeTPBTF, Options{WatchComms: []string{"dockerd"}})
	if tr == nil {
		return
	}
	// SIGCHLD-like non-fatal signal to a watched name, and a fatal one to an unwatched name.
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	sleep.Process.Signal(unix.SIGTERM)
	sleep.Wait()
	// Then one that must be seen, so the test knows the sensor is live.
	testenv.SIGPIPEDaemon(t)
	ev := waitEvent(t, tr, func(ev event.Event) bool { return ev.Hdr().Type == event.TypeSignal })
	if s := ev.(*event.Signal); s.TargetComm != "dockerd" {
		t.Errorf("first signal event targets %q, want only watched daemons", s.TargetComm)
	}
}

func TestCgroupMkdirRmdir(t *testing.T) {
	requireRoot(t)
	root := cgroup2Mount(t)
	for _, mode := range []Mode{ModeTPBTF, ModeTracepoint} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorCgroup, mode, Options{})
			if tr == nil {
				return
			}
			name := fmt.Sprintf("observer-test-%d", time.Now().UnixNano())
			dir := filepath.Join(root, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(dir, &st); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{event.TypeCgroupMkdir, event.TypeCgroupRmdir} {
				ev := waitEvent(t, tr, func(ev event.Event) bool {
					c, ok := ev.(*event.CgroupChange)
					return ok && c.Type == typ && strings.HasSuffix(c.Path, "/"+name)
				}).(*event.CgroupChange)
				if ev.ID != st.Ino || ev.Path != "/"+name {
					t.Errorf("%s: id %d path %q, want id %d (the directory's inode) path %q", typ, ev.ID, ev.Path, st.Ino, "/"+name)
				}
			}
		})
	}
}

// cgroup2Mount finds the cgroup v2 hierarchy: /sys/fs/cgroup or, on hybrid hosts,
// /sys/fs/cgroup/unified.
func cgroup2Mount(t *testing.T) string { return testenv.Cgroup2Mount(t) }

// TestCloseWithNobodyReading: Close must return even when a reader is blocked
// handing an event to a full Events channel that nobody drains, with the
// Start context still live (the daemon closes the tracer before it cancels).
func TestCloseWithNobodyReading(t *testing.T) {
	requireRoot(t)
	root := cgroup2Mount(t)
	tr, err := New(Options{Sensors: []string{SensorCgroup}, EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// With room for one event, a second one received means the reader is
	// blocked sending it.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if st, _ := statusOf(tr, SensorCgroup); st.EventsReceived >= 2 {
			break
		}
		if time.Now().After(deadline) {
			tr.Close()
			t.Fatalf("reader never blocked; status %+v", tr.Status())
		}
		dir := filepath.Join(root, fmt.Sprintf("observer-close-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(dir)
		time.Sleep(10 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		tr.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s while a reader was blocked on a full Events channel")
	}
	if _, ok := <-tr.Events(); !ok {
		t.Fatal("Events closed before its buffered event was read")
	}
	if _, ok := <-tr.Events(); ok {
		t.Fatal("Events not closed after Close")
	}
}

// TestReadFailureDetaches: when a sensor's ring-buffer reader fails, the
// sensor is reported unavailable and its programs are detached: the kernel
// writes nothing more into its ring buffer.
func TestReadFailureDetaches(t *testing.T) {
	requireRoot(t)
	root := cgroup2Mount(t)
	tr := startSensor(t, SensorCgroup, "", Options{})
	r := tr.running[0]
	// The reader's next read of an empty ring fails as a read would: records
	// generated below bring it there.
	injected := errors.New("injected read failure")
	r.failNext.Store(&injected)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		dir := filepath.Join(root, fmt.Sprintf("observer-wake-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(dir)
		if st, _ := statusOf(tr, SensorCgroup); st.Unavailable != "" {
			if !strings.Contains(st.Unavailable, "ring buffer read failed") || st.Mode != "" {
				t.Fatalf("status after read failure = %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader did not fail; status %+v", tr.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tr.wg.Wait() // the reader has returned, so it has detached
	before := r.reader.AvailableBytes()
	dir := filepath.Join(root, fmt.Sprintf("observer-detach-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if after := r.reader.AvailableBytes(); after != before {
		t.Fatalf("ring buffer grew from %d to %d bytes after the reader failed: programs still attached", before, after)
	}
}
