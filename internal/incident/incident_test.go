package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/recorder"
	"github.com/observer-dev/observer/internal/sensor"
)

func TestRules(t *testing.T) {
	var got []string
	r := NewRules(strings.Split("fatal_signal,daemon_exit,residue,slow_copy_up,events_lost", ","), time.Second,
		func(i Incident) { got = append(got, i.Rule) })
	hdr := func(typ string) event.Header { return event.Header{Type: typ, Comm: "dockerd", PID: 7} }
	unknown := func(line string) event.Event {
		ev, _, err := event.DecodeOrKeep([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for _, ev := range []event.Event{
		&event.Signal{Header: hdr("signal"), Signal: "SIGPIPE", Disposition: "default"}, // fires
		&event.Signal{Header: hdr("signal"), Signal: "SIGTERM", Disposition: "handled"}, // handled: no
		&event.DaemonExit{Header: hdr("daemon_exit"), Signal: "SIGPIPE"},                // fires
		&event.DaemonExit{Header: hdr("daemon_exit"), ExitCode: 0},                      // clean exit: no
		&event.DaemonExit{Header: hdr("daemon_exit"), ExitCode: 2},                      // fires
		&event.RenameExdev{Header: hdr("rename_exdev")},                                 // no
		unknown(`{"type":"residue","pid":1,"kind":"semaphore"}`),                        // fires
		&event.Residue{Header: hdr("residue"), Resource: "sem", Kind: "dm_udev_cookie"}, // fires
		unknown(`{"type":"copy_up","pid":1,"duration_ns":2000000000}`),                  // fires
		unknown(`{"type":"copy_up","pid":1,"duration_ns":2000}`),                        // fast: no
		&event.CopyUp{Header: hdr("copy_up"), DurationNS: 3e9},                          // fires
		&event.CopyUp{Header: hdr("copy_up"), DurationNS: 5e8},                          // fast: no
		keptUnknown(t, `{"type":"copy_up","pid":1,"duration_ns":4000000000}`),           // fires
	} {
		r.Observe(ev)
	}
	r.CheckLost([]sensor.Status{{Name: "signal", EventsLost: 5}}, time.Now()) // baseline
	r.CheckLost([]sensor.Status{{Name: "signal", EventsLost: 5}}, time.Now())
	r.CheckLost([]sensor.Status{{Name: "signal", EventsLost: 9}}, time.Now()) // fires
	want := "fatal_signal daemon_exit daemon_exit residue residue slow_copy_up slow_copy_up slow_copy_up events_lost"
	if strings.Join(got, " ") != want {
		t.Errorf("fired %v, want %s", got, want)
	}
	got = nil
	NewRules([]string{"residue"}, time.Second, func(i Incident) { got = append(got, i.Rule) }).
		Observe(&event.Signal{Header: hdr("signal"), Disposition: "default"})
	if len(got) != 0 {
		t.Errorf("disabled rule fired: %v", got)
	}
}

// keptUnknown is an event as a capture reader keeps one of a type it does not
// know (a newer build's): header parsed, JSON kept.
func keptUnknown(t *testing.T, line string) event.Event {
	t.Helper()
	u, err := event.NewUnknown([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The slow-copy-up rule reads the typed event's field: no JSON round trip
// (and so no allocation) per copy-up on the pipeline goroutine.
func TestCopyUpDurationWithoutJSON(t *testing.T) {
	ev := &event.CopyUp{Header: event.Header{Type: event.TypeCopyUp}, DurationNS: 7}
	if d := durationOf(ev); d != 7 {
		t.Fatalf("duration %v", d)
	}
	if n := testing.AllocsPerRun(100, func() { durationOf(ev) }); n != 0 {
		t.Fatalf("durationOf(*event.CopyUp) allocates %v times per call; it must not marshal", n)
	}
	if d := durationOf(keptUnknown(t, `{"type":"copy_up","duration_ns":9}`)); d != 9 {
		t.Fatalf("unknown copy_up: duration %v", d)
	}
}

func TestStoreRotatesAndProtects(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "caps")
	s, err := OpenStore(dir, 3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	for i := range 5 {
		f, err := s.Create("incident fatal_signal: SIGPIPE/../x", t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		f.Write(bytes.Repeat([]byte("x"), 100))
		f.Close()
		s.Done(f.Name())
		if fi, _ := os.Stat(f.Name()); fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
		}
		if filepath.Dir(f.Name()) != dir || !strings.Contains(f.Name(), "sigpipe-x") {
			t.Errorf("file name %s", f.Name())
		}
	}
	files, _ := s.List()
	if len(files) != 3 || !strings.Contains(files[0].Path, "T030002") {
		t.Errorf("kept %v, want the newest 3", files)
	}
	// The size bound: one big file pushes the older ones out.
	f, _ := s.Create("big", t0.Add(time.Hour))
	f.Write(bytes.Repeat([]byte("x"), 950))
	f.Close()
	s.Done(f.Name())
	files, _ = s.List()
	if len(files) != 1 || files[0].Bytes != 950 {
		t.Errorf("after a 950-byte capture with a 1000-byte bound: %v", files)
	}
}

func newManager(t *testing.T, cooldown time.Duration) (*Manager, *recorder.Recorder, *Store) {
	rec, _ := recorder.New(recorder.Options{})
	store, err := OpenStore(t.TempDir(), 10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Recorder: rec, Store: store, Duration: 50 * time.Millisecond, Cooldown: cooldown})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, rec, store
}

// Fire and Signal racing the end of Run (the pipeline finishing its last
// events) neither misuse the WaitGroup nor start a capture once Run has begun
// to shut down; after Run returns they are no-ops. Run with -race.
func TestNoCaptureAfterShutdown(t *testing.T) {
	rec, _ := recorder.New(recorder.Options{})
	store, err := OpenStore(t.TempDir(), 100, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Recorder: rec, Store: store, Duration: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.Fire(Incident{Rule: RuleFatalSignal, Detail: "race"})
				m.Signal()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done // Run returned: every capture it waited for is complete
	before, _ := store.List()
	for range 10 {
		m.Fire(Incident{Rule: RuleFatalSignal, Detail: "late"})
		m.Signal()
	}
	close(stop)
	wg.Wait()
	after, _ := store.List()
	if len(after) != len(before) {
		t.Fatalf("%d captures when Run returned, %d after later Fire/Signal calls; want none started after shutdown", len(before), len(after))
	}
	if m.busy.Load() || len(m.manual) != 0 {
		t.Fatalf("busy %v, manual slots taken %d after shutdown", m.busy.Load(), len(m.manual))
	}
}

// A capture fired before Run started still belongs to the manager's lifetime:
// Run's context ending cancels it (the file ends cleanly) rather than leaving
// it to run for its whole duration under context.Background.
func TestCaptureBeforeRunEndsWithRun(t *testing.T) {
	rec, _ := recorder.New(recorder.Options{})
	store, err := OpenStore(t.TempDir(), 10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Recorder: rec, Store: store, Duration: time.Hour})
	m.Fire(Incident{Rule: RuleFatalSignal, Detail: "before Run"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return: the hour-long capture started before Run was not cancelled")
	}
	files, _ := store.List()
	if len(files) != 1 {
		t.Fatalf("%d captures, want 1", len(files))
	}
	f, _ := os.Open(files[0].Path)
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil || !strings.Contains(cr.Header().Reason, "before Run") {
		t.Fatalf("capture header %+v, err %v", cr.Header(), err)
	}
}

func TestIncidentsOneAtATimeWithCooldown(t *testing.T) {
	m, _, store := newManager(t, time.Hour)
	for range 5 {
		m.Fire(Incident{Rule: RuleFatalSignal, Detail: "SIGPIPE to dockerd"})
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.busy.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.Fire(Incident{Rule: RuleDaemonExit, Detail: "within the cooldown"})
	time.Sleep(100 * time.Millisecond)
	files, _ := store.List()
	if len(files) != 1 {
		t.Fatalf("%d captures, want 1 (one at a time, then cooldown)", len(files))
	}
	f, _ := os.Open(files[0].Path)
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil || !strings.HasPrefix(cr.Header().Reason, "incident fatal_signal: SIGPIPE") {
		t.Errorf("capture header %+v, err %v", cr.Header(), err)
	}
}

func TestHTTPCapture(t *testing.T) {
	m, rec, store := newManager(t, 0)
	rec.Record(&event.RenameExdev{Header: event.Header{Time: time.Now(), Type: event.TypeRenameExdev}, OldPath: "/a"})
	srv := httptest.NewServer(m)
	defer srv.Close()
	for _, bad := range []string{"?duration=x", "?duration=-1s", "?duration=11m"} {
		resp, _ := http.Post(srv.URL+bad, "", nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", bad, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"?duration=10ms&reason=test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != 200 || res.Events != 1 || filepath.Dir(res.File) != store.Dir() {
		t.Errorf("status %d, result %+v", resp.StatusCode, res)
	}
	resp, err = http.Post(srv.URL+"?duration=10ms&stream=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := capture.NewReader(resp.Body)
	if err != nil || cr.Header().Reason != "manual" {
		t.Fatalf("streamed capture: %v", err)
	}
}

func TestRuleNamesAreSortedAndValidated(t *testing.T) {
	names := RuleNames()
	if !slices.IsSorted(names) || len(names) != 5 {
		t.Errorf("RuleNames() = %v, want the 5 rules sorted", names)
	}
	for _, n := range []string{RuleFatalSignal, RuleDaemonExit, RuleResidue, RuleSlowCopyUp, RuleEventsLost} {
		if !slices.Contains(names, n) {
			t.Errorf("RuleNames() lacks %s", n)
		}
	}
	if err := ValidateRules(names); err != nil {
		t.Errorf("every rule: %v", err)
	}
	if err := ValidateRules([]string{RuleResidue, "fatal-signal"}); err == nil || !strings.Contains(err.Error(), `"fatal-signal"`) {
		t.Errorf("a misspelt rule: err %v, want it named", err)
	}
}
