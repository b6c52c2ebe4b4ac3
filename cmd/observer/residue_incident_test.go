package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/report"
	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/testenv"
)

// startSemLeaker runs a semaphore leaker (testenv.StartSemLeaker) and returns
// it and the arrays it kept (semid -> key).
func startSemLeaker(t *testing.T) (*exec.Cmd, map[int32]uint32) {
	t.Helper()
	low := rand.Uint32N(0xfff0) + 1
	dm := func(i uint32) uint32 { return 0x0d4d0000 | ((low + i) & 0xffff) }
	spec := fmt.Sprintf("%x:0,%x:1,%x:0,%x:0,0:0", dm(0), dm(1), dm(2), 0x5e000000|low<<4)
	cmd, kept, _ := testenv.StartSemLeaker(t, spec)
	if len(kept) != 4 {
		t.Fatalf("leaker kept %v; want 4 arrays", kept)
	}
	return cmd, kept
}

// TestIncidentSemLeak is the semaphore half of the incident drill, on the real
// kernel: a helper creates devicemapper-cookie (0x0d4dXXXX) and other
// semaphore arrays, a helper named dockerd dies of SIGPIPE, the first helper is
// SIGKILLed before removing its arrays. The residue detector's events go
// through the pipeline, so the "residue" incident rule takes the capture; its
// report shows the signal, the daemon_exit and each leaked array with the
// leaker's pid and comm; the arrays are then removed, and a replay as nobody
// (no BPF, no scans) still shows them in /status, /residue and the metrics,
// because they come from the capture.
func TestIncidentSemLeak(t *testing.T) {
	testenv.RequireRoot(t)
	capDir := filepath.Join(t.TempDir(), "captures")
	base, stop := startInProcess(t, []string{"signal", "sem"},
		"--capture-dir", capDir, "--incident-rules", "residue", "--incident-duration", "1s", "--incident-cooldown", "0s",
		"--residue-grace", "1s", "--residue-interval", "1s", "--docker-host", "none")

	leaker, kept := startSemLeaker(t)
	leakerPid := uint32(leaker.Process.Pid)
	leakerComm := filepath.Base(os.Args[0])
	leakerComm = leakerComm[:min(len(leakerComm), 15)]
	// Every array is known with its creator before the kill.
	waitUntil(t, "sem_create events for the leaker's arrays", func() bool {
		var rep residue.Report
		getJSON(t, base+"/residue", &rep)
		n := 0
		for _, s := range rep.Semaphores() {
			if _, ok := kept[s.SemID]; ok && s.Creator.PID == leakerPid {
				n++
			}
		}
		return n == len(kept)
	})

	dockerdPid := testenv.SIGPIPEDaemon(t)
	if err := leaker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	leaker.Wait()
	killed := time.Now()

	file, rep := waitResidueCapture(t, capDir, kept)
	t.Logf("residue capture %s, %v after the kill", filepath.Base(file), time.Since(killed).Round(time.Millisecond))
	if !strings.HasPrefix(rep.Header.Reason, "incident residue: sem ") || !rep.Complete {
		t.Errorf("reason %q, complete %v", rep.Header.Reason, rep.Complete)
	}
	sigAt, exitAt := -1, -1
	residueAt := map[int32]int{}
	for i, it := range rep.Timeline {
		switch {
		case it.PID == dockerdPid && it.Kind == event.TypeSignal && sigAt < 0 && strings.Contains(it.Summary, fmt.Sprintf("SIGPIPE to dockerd (pid %d)", dockerdPid)):
			sigAt = i
		case it.PID == dockerdPid && it.Kind == event.TypeDaemonExit && exitAt < 0 && strings.Contains(it.Summary, "killed by SIGPIPE"):
			exitAt = i
		case it.Kind == event.TypeResidue && it.PID == leakerPid && it.Comm == leakerComm:
			var id int32
			if _, err := fmt.Sscanf(it.Summary, "semaphore array %d ", &id); err == nil {
				if _, ok := kept[id]; ok && strings.Contains(it.Summary, "ipcrm -s "+strconv.Itoa(int(id))) {
					residueAt[id] = i
				}
			}
		}
	}
	if sigAt < 0 || exitAt < 0 || sigAt > exitAt || len(residueAt) != len(kept) {
		t.Fatalf("timeline: signal at %d, daemon_exit at %d, residue of the leaker's arrays at %v (want all %d, after the exit):\n%+v",
			sigAt, exitAt, residueAt, len(kept), rep.Timeline)
	}
	for id, i := range residueAt {
		if i < exitAt {
			t.Errorf("residue of array %d at %d, before the daemon_exit at %d", id, i, exitAt)
		}
	}
	var text strings.Builder
	runReport([]string{file}, &text, &text)
	t.Logf("report:\n%s", text.String())

	// The live daemon: the rule saw the residue events, the gauges count them.
	live := scrape(t, base+"/metrics", "observer_")
	if live[`observer_incidents_total{rule="residue"}`] < 1 || live[`observer_sem_residue_arrays{kind="dm_udev_cookie"}`] < 2 || live[`observer_sem_residue_arrays{kind="other"}`] < 2 {
		t.Errorf("live metrics: incidents %v, residue arrays dm %v other %v",
			live[`observer_incidents_total{rule="residue"}`], live[`observer_sem_residue_arrays{kind="dm_udev_cookie"}`], live[`observer_sem_residue_arrays{kind="other"}`])
	}
	stop()

	// Clean up what leaked, so that only the capture can still tell about it.
	for id := range kept {
		if err := testenv.SemRemove(id); err != nil {
			t.Errorf("ipcrm -s %d: %v", id, err)
		}
	}

	want := expectedMetrics(t, file)
	got := replayAsNobody(t, file)
	for series, n := range want {
		if got.metrics[series] != n {
			t.Errorf("replay: %s = %v, want %v (from the capture)", series, got.metrics[series], n)
		}
	}
	if want[`observer_sem_residue_arrays{kind="dm_udev_cookie"}`] < 2 || want[`observer_sem_residue_arrays{kind="other"}`] < 2 ||
		want[fmt.Sprintf(`observer_daemon_exits_total{signal="SIGPIPE",target="dockerd"}`)] < 1 {
		t.Errorf("the capture implies %v; want at least the leaker's 2 dm cookies, 2 other arrays and the SIGPIPE exit", want)
	}
	for what, items := range map[string][]residue.Item{"/status": got.status.Residue, "/residue": got.residue.Residue} {
		found := 0
		for _, it := range items {
			if it.SemID == nil {
				continue
			}
			if key, ok := kept[*it.SemID]; ok && it.Creator.PID == leakerPid && it.Key == residue.FormatKey(int32(key)) {
				found++
			}
		}
		if found != len(kept) {
			t.Errorf("replay %s: %d of the leaker's %d arrays as residue: %+v", what, found, len(kept), items)
		}
	}
	// The inventory too comes from the capture's "semaphores" snapshot section.
	inv := 0
	for _, s := range got.residue.Semaphores() {
		if _, ok := kept[s.SemID]; ok && s.Creator.PID == leakerPid && !s.CreatorGoneAt.IsZero() {
			inv++
		}
	}
	if inv != len(kept) {
		t.Errorf("replay /residue inventory: %d of the leaker's %d arrays (with the creator gone): %+v", inv, len(kept), got.residue.Semaphores())
	}
	if !got.residue.Offline {
		t.Error("replay /residue does not say it comes from the capture")
	}
	testenv.Result(t, map[string]any{"test": "incident_sem_leak", "leaked": len(kept), "residue_after_kill_ms": time.Since(killed).Milliseconds(),
		"replay_dm_cookies": got.metrics[`observer_sem_residue_arrays{kind="dm_udev_cookie"}`]})
}

// waitResidueCapture waits for a complete residue-incident capture whose
// report has a residue item for every kept array. Other residue on the host
// (arrays older than the grace period) may have fired captures of its own.
func waitResidueCapture(t *testing.T, dir string, kept map[int32]uint32) (string, *report.Report) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "capture-*incident-residue*.jsonl.gz"))
		for _, f := range files {
			if !complete(f) {
				continue
			}
			fh, err := os.Open(f)
			if err != nil {
				continue
			}
			cr, err := capture.NewReader(fh)
			if err != nil {
				fh.Close()
				continue
			}
			rep := report.Build(cr)
			fh.Close()
			n := 0
			for _, it := range rep.Timeline {
				if it.Kind != event.TypeResidue {
					continue
				}
				for id := range kept {
					if strings.HasPrefix(it.Summary, fmt.Sprintf("semaphore array %d ", id)) {
						n++
					}
				}
			}
			if n == len(kept) {
				return f, rep
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	t.Fatalf("no complete residue capture with the %d leaked arrays within 20s; files: %v", len(kept), files)
	return "", nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStandaloneCaptureHasResidue: with no daemon running, `observer capture
// --standalone` runs the residue detectors too, so the capture of a node
// whose daemon will not start shows the semaphore arrays a SIGKILLed process
// left behind (here younger than the grace: in the inventory, not yet residue).
func TestStandaloneCaptureHasResidue(t *testing.T) {
	testenv.RequireRoot(t)
	leaker, kept := startSemLeaker(t)
	leaker.Process.Kill()
	leaker.Wait()

	path := filepath.Join(t.TempDir(), "standalone.jsonl.gz")
	var stdout, stderr strings.Builder
	if code := dispatch([]string{"capture", "--standalone", "--duration", "1s", "--out", path}, &stdout, &stderr); code != exitOK {
		t.Fatalf("capture --standalone: exit %d: %s", code, stderr.String())
	}
	var last []residue.Semaphore
	sawResidue := false
	for _, rec := range readRecords(t, path) {
		if rec.Kind != capture.KindSnapshot {
			continue
		}
		if raw, ok := rec.Snapshot.Sections[residue.SectionSemaphores]; ok {
			last = nil
			if err := json.Unmarshal(raw, &last); err != nil {
				t.Fatal(err)
			}
		}
		_, ok := rec.Snapshot.Sections[residue.SectionResidue]
		sawResidue = sawResidue || ok
	}
	if !sawResidue {
		t.Error("no residue section in the capture's snapshots")
	}
	found := map[int32]bool{}
	for _, s := range last {
		if _, ok := kept[s.SemID]; ok {
			found[s.SemID] = true
		}
	}
	if len(found) != len(kept) {
		t.Errorf("the capture's semaphore inventory has %d of the %d leaked arrays %v: %+v", len(found), len(kept), kept, last)
	}
}
