package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

var (
	t0   = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	ctrA = strings.Repeat("a1", 32)
)

// incidentCapture is a capture of a bad night: a copy-up storm in a container,
// an EXDEV rename, lost events, residue and dockerd killed by SIGPIPE.
func incidentCapture(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.Header{Host: "node7", Kernel: "6.1.0", ObserverVersion: "v1", StartTime: t0.Add(50 * time.Second),
		Reason: "incident fatal_signal: SIGPIPE to dockerd (pid 812)", Sensors: []sensor.Status{{Name: "signal", Mode: "tp_btf"}}})
	if err != nil {
		t.Fatal(err)
	}
	snap := func(at time.Duration, lost uint64) {
		w.WriteSnapshot(&capture.Snapshot{Time: t0.Add(at), Reason: "periodic", Sections: map[string]json.RawMessage{
			"sensors":    mustJSON([]sensor.Status{{Name: "signal", Mode: "tp_btf", EventsReceived: 10, EventsLost: lost}}),
			"containers": mustJSON([]map[string]string{{"id": ctrA, "name": "web", "image": "nginx:1"}}),
		}})
	}
	ev := func(e any) {
		raw, _ := json.Marshal(e)
		if err := w.WriteEvent(raw); err != nil {
			t.Fatal(err)
		}
	}
	h := func(at time.Duration, typ string, pid uint32, comm, ctr string) event.Header {
		return event.Header{Time: t0.Add(at), Type: typ, PID: pid, TID: pid, Comm: comm, ContainerID: ctr}
	}
	snap(0, 0)
	for i := range 5 {
		ev(map[string]any{"time": t0.Add(time.Duration(5+i) * time.Second), "type": "copy_up", "pid": 300 + i, "comm": "python", "container_id": ctrA,
			"duration_ns": (i + 1) * 400_000_000, "path": "/usr/lib/big.so"})
	}
	ev(&event.RenameExdev{Header: h(12*time.Second, event.TypeRenameExdev, 400, "mv", ctrA), OldPath: "/app/dir", NewPath: "/app/dir2"})
	snap(20*time.Second, 37)
	semid := int32(5)
	ev(&event.Residue{Header: event.Header{Time: t0.Add(30 * time.Second), Type: event.TypeResidue}, Resource: "sem", Kind: "dm_udev_cookie",
		Reason: "creator dockerd (pid 777) exited without removing it", SemID: &semid, Key: "0x0d4dc3c3",
		Creator: event.Creator{Known: true, PID: 777, Comm: "dockerd"}, AgeSec: 61, Remove: "ipcrm -s 5"})
	ev(&event.Signal{Header: h(50*time.Second, event.TypeSignal, 812, "dockerd", ""), Signal: "SIGPIPE", Signo: 13,
		SenderPID: 812, SenderComm: "dockerd", TargetPID: 812, TargetComm: "dockerd", Disposition: "default", Result: "delivered"})
	ev(&event.DaemonExit{Header: h(50*time.Second+time.Millisecond, event.TypeDaemonExit, 812, "dockerd", ""), Signal: "SIGPIPE", Signo: 13})
	snap(60*time.Second, 37)
	w.Close(capture.End{Time: t0.Add(60 * time.Second), Events: 10, Snapshots: 3})
	return buf.Bytes()
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func build(t testing.TB, data []byte) *Report {
	cr, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return Build(cr)
}

func TestTimelineAndSummaries(t *testing.T) {
	r := build(t, incidentCapture(t))
	var kinds []string
	for _, it := range r.Timeline {
		kinds = append(kinds, it.Kind)
	}
	want := "copy_up copy_up copy_up copy_up copy_up rename_exdev events_lost residue signal daemon_exit"
	if strings.Join(kinds, " ") != want {
		t.Errorf("timeline %v\nwant %s", kinds, want)
	}
	if !r.Complete || r.Error != "" {
		t.Errorf("complete %v error %q", r.Complete, r.Error)
	}
	if len(r.SlowestCopyUps) != 5 || r.SlowestCopyUps[0].DurationNS != 2_000_000_000 || r.SlowestCopyUps[0].PID != 304 {
		t.Errorf("slowest copy-ups %+v", r.SlowestCopyUps)
	}
	if len(r.Containers) != 2 || r.Containers[1].ID != ctrA || r.Containers[1].Name != "web" || r.Containers[1].Counts["copy_up"] != 5 {
		t.Errorf("containers %+v", r.Containers)
	}
	if res := r.Timeline[7]; res.PID != 777 || res.Comm != "dockerd" {
		t.Errorf("residue item %+v: want the creator's pid and comm", res)
	}
	last := r.Timeline[len(r.Timeline)-1]
	if last.PID != 812 || last.Summary != "dockerd (pid 812) killed by SIGPIPE" {
		t.Errorf("last item %+v", last)
	}
	var text bytes.Buffer
	if err := r.Text(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SIGPIPE to dockerd (pid 812)", "sensor signal lost 37 events", "semaphore array 5 (key 0x0d4dc3c3, dm_udev_cookie) left behind: creator dockerd (pid 777) exited without removing it; remove with: ipcrm -s 5", "2s  a1a1a1a1a1a1", "web (nginx:1)"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, text.String())
		}
	}
	var js bytes.Buffer
	r.JSON(&js)
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Timeline) != len(r.Timeline) {
		t.Errorf("json round trip: %v", err)
	}
}

func TestTruncatedCaptureReportsWhatItHas(t *testing.T) {
	full := incidentCapture(t)
	r := build(t, full[:len(full)-10])
	if r.Complete || len(r.Warnings) == 0 || r.Error != "" {
		t.Errorf("complete %v warnings %q error %q", r.Complete, r.Warnings, r.Error)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := build(t, incidentCapture(t)).HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, l := range Lanes {
		if !strings.Contains(page, `fill="`+l.Color+`"`) {
			t.Errorf("no %s mark in the picture", l.Kind)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
}
