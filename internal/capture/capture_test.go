package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// sample writes a small capture: header, snapshot, events of known and unknown
// types, end. Each event is flushed as its own member when flushEach is set.
func sample(t testing.TB, flushEach bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Host: "node1", Kernel: "6.18", ObserverVersion: "test", StartTime: t0, Reason: "manual",
		Sensors: []sensor.Status{{Name: "signal", Mode: "tp_btf", EventsReceived: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{Time: t0, Reason: "capture_start", Sections: map[string]json.RawMessage{"containers": json.RawMessage(`[]`)}}
	must(t, w.WriteSnapshot(snap))
	evs := []event.Event{
		&event.Signal{Header: event.Header{Time: t0.Add(time.Second), Type: event.TypeSignal, PID: 42, Comm: "dockerd"},
			Signal: "SIGPIPE", Signo: 13, TargetPID: 42, TargetComm: "dockerd", Disposition: "default", Result: "delivered"},
		&event.DaemonExit{Header: event.Header{Time: t0.Add(2 * time.Second), Type: event.TypeDaemonExit, PID: 42, Comm: "dockerd"},
			Signal: "SIGPIPE", Signo: 13},
	}
	for _, ev := range evs {
		raw, _ := json.Marshal(ev)
		must(t, w.WriteEvent(raw))
		if flushEach {
			must(t, w.Flush())
		}
	}
	must(t, w.WriteEvent(json.RawMessage(`{"time":"2026-03-01T03:00:03Z","type":"from_a_newer_observer","pid":1,"tid":1,"comm":"x","cgroup_id":0,"container_id":"","kind":"semaphore"}`)))
	must(t, w.Close(End{Time: t0.Add(3 * time.Second), Events: 3, Snapshots: 1}))
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(data []byte) (Header, []Record, []string, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, nil, err
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), recs, r.Warnings(), nil
		}
		if err != nil {
			return r.Header(), recs, r.Warnings(), err
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	h, recs, warns, err := readAll(sample(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != FormatName || h.Version != Version || h.Host != "node1" || len(h.Sensors) != 1 || !h.StartTime.Equal(t0) {
		t.Errorf("header = %+v", h)
	}
	kinds := []string{}
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if got := strings.Join(kinds, ","); got != "snapshot,event,event,event,end" {
		t.Fatalf("records = %s", got)
	}
	if s, ok := recs[1].Event.(*event.Signal); !ok || s.TargetPID != 42 || s.Signal != "SIGPIPE" {
		t.Errorf("signal = %#v", recs[1].Event)
	}
	u, ok := recs[3].Event.(*event.Unknown)
	if !ok || u.Type != "from_a_newer_observer" || !strings.Contains(string(u.Raw), `"kind":"semaphore"`) {
		t.Errorf("unknown type not kept: %#v", recs[3].Event)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `unknown type "from_a_newer_observer"`) {
		t.Errorf("warnings = %q", warns)
	}
}

// A standard gzip reader sees one JSON line per record: zcat | jq works.
func TestReadableByStandardTools(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(sample(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), data)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["record"] == nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
}

// Cutting the file at any byte never panics, never errors, and yields a prefix
// of the records: exactly those of the complete members.
func TestTruncatedAtEveryByte(t *testing.T) {
	full := sample(t, true)
	_, all, _, _ := readAll(full)
	headerLen := 0
	for n := 1; n < len(full); n++ {
		_, recs, warns, err := readAll(full[:n])
		if err != nil {
			if headerLen == 0 && errors.Is(err, ErrNotCapture) {
				continue // the header member itself is incomplete
			}
			t.Fatalf("cut at %d/%d: %v", n, len(full), err)
		}
		if headerLen == 0 {
			headerLen = n
		}
		if len(recs) >= len(all) {
			t.Fatalf("cut at %d: %d records, want fewer than %d", n, len(recs), len(all))
		}
		for i := range recs {
			if recs[i].Kind != all[i].Kind {
				t.Fatalf("cut at %d: record %d is %s, want %s", n, i, recs[i].Kind, all[i].Kind)
			}
		}
		if !strings.Contains(strings.Join(warns, "\n"), "cut short") {
			t.Fatalf("cut at %d: no warning, got %q", n, warns)
		}
	}
}

func TestBitFlipsGiveErrorsNotPanics(t *testing.T) {
	full := sample(t, true)
	for i := range full {
		for _, bit := range []byte{1, 0x80} {
			data := bytes.Clone(full)
			data[i] ^= bit
			readAll(data) // must not panic; errors and warnings are both fine
		}
	}
}

func TestForeignAndNewerFiles(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"empty":      {nil, "too short"},
		"text":       {[]byte("hello world\n"), "not gzip"},
		"other json": {gz(`{"a":1}` + "\n"), "not an observer-capture header"},
		"newer":      {gz(`{"record":"header","header":{"format":"observer-capture","version":99}}` + "\n"), "version 99"},
	} {
		_, _, _, err := readAll(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestDamagedMemberIsAnError(t *testing.T) {
	full := sample(t, true)
	data := bytes.Clone(full)
	// Flip a byte inside the last member's CRC trailer: content complete but wrong.
	data[len(data)-6] ^= 0xff
	_, _, _, err := readAll(data)
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("err = %v, want ErrDamaged", err)
	}
}

func TestMemberTooLarge(t *testing.T) {
	var b bytes.Buffer
	w, _ := NewWriter(&b, Header{})
	w.Flush()
	zw := gzip.NewWriter(&b)
	zw.Write(bytes.Repeat([]byte(" "), MaxMemberBytes+10))
	zw.Close()
	_, _, _, err := readAll(b.Bytes())
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}
