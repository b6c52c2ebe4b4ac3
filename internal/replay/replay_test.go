package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/daemon"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/sensor"
)

var ctrA = strings.Repeat("ab", 32)

func writeCapture(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "c.jsonl.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := capture.NewWriter(f, capture.Header{Host: "n1", Sensors: []sensor.Status{{Name: "signal", Mode: "tp_btf"}}})
	sensors, _ := json.Marshal([]sensor.Status{{Name: "signal", Mode: "tp_btf", EventsReceived: 3, EventsLost: 7}})
	ctrs, _ := json.Marshal([]map[string]string{{"id": ctrA, "name": "web"}})
	w.WriteSnapshot(&capture.Snapshot{Reason: "periodic", Sections: map[string]json.RawMessage{"sensors": sensors, "containers": ctrs}})
	for _, ev := range []any{
		&event.Signal{Header: event.Header{Type: "signal", PID: 9, Comm: "dockerd"}, Signal: "SIGPIPE", TargetComm: "dockerd", Disposition: "default"},
		&event.DaemonExit{Header: event.Header{Type: "daemon_exit", PID: 9, Comm: "dockerd"}, Signal: "SIGPIPE"},
		&event.RenameExdev{Header: event.Header{Type: "rename_exdev", CgroupID: 77, ContainerID: ctrA}},
		map[string]any{"type": "from_a_newer_observer", "kind": "semaphore"},
	} {
		raw, _ := json.Marshal(ev)
		w.WriteEvent(raw)
	}
	w.Close(capture.End{})
	return path
}

func run(t *testing.T, path string, exit bool) (string, *Replay, context.CancelFunc, chan error) {
	rp, err := Open(path, Options{ExitWhenDone: exit})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	rp.Start(ctx)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: &config.Config{}, Source: rp, Resolver: rp, Listener: ln,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SourceInfo: func() any { return rp.Info() }, Offline: rp})
	}()
	return "http://" + ln.Addr().String(), rp, cancel, done
}

func TestReplayServesMetricsStatusAndKeepsContainers(t *testing.T) {
	base, rp, cancel, done := run(t, writeCapture(t), false)
	defer cancel()
	<-rp.Done()
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`observer_daemon_signals_total{disposition="default",signal="SIGPIPE",target="dockerd"} 1`,
		`observer_daemon_exits_total{signal="SIGPIPE",target="dockerd"} 1`,
		`observer_rename_exdev_total{container="abababababab"} 1`, // the container id on the event is kept
		`observer_events_lost_total{sensor="signal"} 7`,           // status from the snapshot
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	resp, _ = http.Get(base + "/status")
	var st daemon.Status
	json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&st)
	resp.Body.Close()
	if len(st.Containers) != 1 || st.Containers[0].Name != "web" {
		t.Errorf("status containers %+v", st.Containers)
	}
	info := rp.Info()
	if !info.Done || info.Events != 4 || !info.Complete || len(info.Warnings) != 1 {
		t.Errorf("info %+v", info)
	}
	cancel()
	<-done
}

func TestReplayExitWhenDone(t *testing.T) {
	_, _, cancel, done := run(t, writeCapture(t), true)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replay with exit did not end")
	}
}

func TestReplayRefusesForeignFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	os.WriteFile(p, []byte("hello"), 0o644)
	if _, err := Open(p, Options{ExitWhenDone: true}); err == nil || !strings.Contains(err.Error(), "not an observer capture") {
		t.Errorf("err = %v", err)
	}
}

// TestReplayResidueFromCapture: the replay's residue is the capture's (its
// last snapshot plus the events), not this machine's: semid 424242 exists
// nowhere here, yet /residue, /status and the metrics show it.
func TestReplayResidueFromCapture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := capture.NewWriter(f, capture.Header{Host: "n1"})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id := int32(424242)
	creator := event.Creator{Known: true, PID: 4242, Comm: "dockerd"}
	item := residue.Item{Resource: "sem", Kind: residue.KindDMUdevCookie, Reason: "creator dockerd (pid 4242) exited without removing it",
		SemID: &id, Key: "0x0d4d0042", IPCNS: 4026531839, Creator: creator, Since: t0, Remove: "ipcrm -s 424242"}
	vethItem := residue.Item{Resource: "veth", Kind: "veth", Reason: "its peer is gone", Name: "veth0a0a0a0", Ifindex: 9999, Since: t0, Remove: "ip link del veth0a0a0a0"}
	section := func(v any) json.RawMessage { raw, _ := json.Marshal(v); return raw }
	for _, ev := range []any{
		&event.SemCreate{Header: event.Header{Time: t0, Type: event.TypeSemCreate, PID: 4242, Comm: "dockerd", IPCNS: 4026531839}, SemID: id, Key: 0x0d4d0042, NSems: 1, Flags: 0o3600},
		&event.Residue{Header: event.Header{Time: t0.Add(70 * time.Second), Type: event.TypeResidue}, Resource: "sem", Kind: residue.KindDMUdevCookie,
			SemID: &id, Key: "0x0d4d0042", Creator: creator, AgeSec: 70, Remove: "ipcrm -s 424242"},
	} {
		raw, _ := json.Marshal(ev)
		w.WriteEvent(raw)
	}
	w.WriteSnapshot(&capture.Snapshot{Time: t0.Add(80 * time.Second), Reason: "capture_end", Sections: map[string]json.RawMessage{
		residue.SectionSemaphores: section([]residue.Semaphore{{IPCNS: 4026531839, SemID: id, Key: "0x0d4d0042", Kind: residue.KindDMUdevCookie, NSems: 1, Creator: creator, CreatedAt: t0}}),
		residue.SectionVeths:      section([]residue.Veth{{Ifindex: 9999, Name: "veth0a0a0a0", PeerNetnsID: -1, FirstSeen: t0, OrphanSince: t0, Reason: "its peer is gone"}}),
		residue.SectionResidue:    section([]residue.Item{item, vethItem}),
	}})
	w.Close(capture.End{})
	f.Close()

	base, rp, cancel, done := run(t, path, false)
	defer cancel()
	<-rp.Done()
	time.Sleep(50 * time.Millisecond)
	var rep residue.Report
	resp, err := http.Get(base + "/residue")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if !rep.Offline || len(rep.Residue) != 2 || *rep.Residue[0].SemID != id || rep.Residue[0].Creator.PID != 4242 ||
		rep.Residue[0].Age != "1m20s" || rep.Residue[1].Name != "veth0a0a0a0" || len(rep.Semaphores()) != 1 || len(rep.Veths()) != 1 {
		t.Fatalf("/residue = %+v", rep)
	}
	var st daemon.Status
	resp, _ = http.Get(base + "/status")
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st.Residue) != 2 || st.Residue[0].Creator.Comm != "dockerd" {
		t.Fatalf("/status residue = %+v", st.Residue)
	}
	resp, _ = http.Get(base + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`observer_sem_residue_arrays{kind="dm_udev_cookie"} 1`,
		`observer_sem_residue_arrays{kind="other"} 0`,
		`observer_veth_residue 1`,
		`observer_veth_interfaces 1`,
		`observer_sem_arrays{ipc_ns="4026531839"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	<-done
}

// TestPacer: records are spaced as recorded, divided by the speed; the first
// record sets the origin, late (out-of-order) records and unstamped ones go
// at once, and a cancelled context ends the wait.
func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	wall := time.Unix(1000, 0)
	var slept []time.Duration
	p := pacer{speed: 2, now: func() time.Time { return wall }, sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		wall = wall.Add(d)
		return nil
	}}
	for _, at := range []time.Time{t0, t0.Add(2 * time.Second), t0.Add(time.Second), {}, t0.Add(5 * time.Second)} {
		if err := p.wait(context.Background(), at); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{time.Second, 1500 * time.Millisecond}
	if !slices.Equal(slept, want) {
		t.Errorf("slept %v, want %v", slept, want)
	}

	fast := pacer{speed: 0, sleep: func(context.Context, time.Duration) error { t.Error("speed 0 slept"); return nil }}
	fast.wait(context.Background(), t0)
	fast.wait(context.Background(), t0.Add(time.Hour))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	paced := pacer{speed: 1, now: time.Now, sleep: sleepCtx}
	paced.wait(ctx, t0)
	if err := paced.wait(ctx, t0.Add(time.Hour)); err == nil {
		t.Error("a cancelled wait for an hour returned no error")
	}
}

func TestReplaySpeedChecked(t *testing.T) {
	for _, s := range []float64{-1, 2e6, math.NaN()} {
		if _, err := Open(writeCapture(t), Options{Speed: s}); err == nil || !strings.Contains(err.Error(), "speed") {
			t.Errorf("speed %g: err = %v", s, err)
		}
	}
}

// TestReplayPacesRecords: with a speed, the replay waits between records as
// they were spaced in the capture, divided by the speed (a fake clock stands
// in for time), and still delivers every event.
func TestReplayPacesRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paced.jsonl.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := capture.NewWriter(f, capture.Header{Host: "n1"})
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	w.WriteSnapshot(&capture.Snapshot{Time: t0, Reason: "periodic", Sections: map[string]json.RawMessage{}})
	for _, d := range []time.Duration{time.Second, 3 * time.Second} {
		raw, _ := json.Marshal(&event.Signal{Header: event.Header{Type: "signal", Time: t0.Add(d), PID: 9, Comm: "dockerd"}, Signal: "SIGPIPE"})
		w.WriteEvent(raw)
	}
	w.Close(capture.End{})
	f.Close()

	rp, err := Open(path, Options{ExitWhenDone: true, Speed: 2})
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Unix(1000, 0)
	var slept []time.Duration
	rp.pace.now = func() time.Time { return wall }
	rp.pace.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		wall = wall.Add(d)
		return nil
	}
	rp.Start(context.Background())
	n := 0
	for range rp.Events() {
		n++
	}
	<-rp.Done()
	if want := []time.Duration{500 * time.Millisecond, time.Second}; !slices.Equal(slept, want) || n != 2 {
		t.Errorf("slept %v and delivered %d events; want %v and 2", slept, n, want)
	}
	if info := rp.Info(); info.Speed != 2 || !info.Done {
		t.Errorf("info = %+v, want speed 2 and done", info)
	}
}
