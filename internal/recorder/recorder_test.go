package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
)

func rename(t time.Time, i int) *event.RenameExdev {
	return &event.RenameExdev{
		Header:  event.Header{Time: t, Type: event.TypeRenameExdev, PID: uint32(i), Comm: "mv"},
		OldPath: fmt.Sprintf("/var/lib/docker/overlay2/%08d/dir", i), NewPath: "/x",
	}
}

// Under an event storm the recorder holds no more than its byte bound (its own
// accounting), its entry array stays proportional, and the heap agrees.
func TestMemoryBoundUnderStorm(t *testing.T) {
	const bound = 4 << 20
	r, err := New(Options{MaxBytes: bound, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Now()
	maxSeen := int64(0)
	for i := range 500_000 {
		r.Record(rename(now, i))
		if i%1000 == 0 {
			if b := r.Stats().Bytes; b > maxSeen {
				maxSeen = b
			}
		}
	}
	st := r.Stats()
	if st.Bytes > bound || maxSeen > bound {
		t.Fatalf("holds %d bytes (max seen %d), bound %d", st.Bytes, maxSeen, bound)
	}
	if st.Bytes < bound*9/10 || st.Evicted == 0 {
		t.Errorf("holds %d bytes with %d evicted: the storm should have filled it", st.Bytes, st.Evicted)
	}
	perEntry := st.Bytes / int64(st.Entries)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	// Entries live in whole chunks counted at their size: the heap grows by
	// the bound at most, plus slack for the test's own allocations (500k
	// events are ~60 MB encoded, so a leak shows).
	if limit := int64(bound) + 1<<20; growth > limit {
		t.Errorf("heap grew %d bytes holding %d accounted bytes (limit %d)", growth, st.Bytes, limit)
	}
	t.Logf("storm: 500000 events, bound %d, held %d entries, %d bytes (%d per entry), heap growth %d bytes, evicted %d",
		bound, st.Entries, st.Bytes, perEntry, growth, st.Evicted)
	runtime.KeepAlive(r)
}

func TestWindowEvicts(t *testing.T) {
	r, _ := New(Options{Window: time.Minute})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	r.Record(rename(clock.Add(-2*time.Minute), 1))
	r.Record(rename(clock.Add(-30*time.Second), 2))
	if st := r.Stats(); st.Entries != 1 || st.Evicted != 1 {
		t.Fatalf("stats = %+v, want the old event gone", st)
	}
	clock = clock.Add(time.Minute)
	r.Record(rename(clock, 3))
	if st := r.Stats(); st.Entries != 1 {
		t.Fatalf("stats = %+v, want only the newest", st)
	}
}

func readCapture(t *testing.T, data []byte) (capture.Header, []capture.Record, *capture.Reader) {
	t.Helper()
	cr, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var recs []capture.Record
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return cr.Header(), recs, cr
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
}

// A capture holds the recorded past, a snapshot, the events that arrive during
// its duration in order, a final snapshot and the end record.
func TestCapturePastAndLive(t *testing.T) {
	b := bus.New()
	r, _ := New(Options{
		Providers: []Provider{
			{Name: "answer", Collect: func(context.Context) (any, error) { return 42, nil }},
			{Name: "broken", Collect: func(context.Context) (any, error) { return nil, errors.New("no such thing") }},
			{Name: "buggy", Collect: func(context.Context) (any, error) { panic("bug") }},
		},
		Header: func() capture.Header { return capture.Header{Host: "h1"} },
	})
	r.Subscribe(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	now := time.Now()
	for i := range 3 {
		b.Publish(rename(now, i))
	}
	waitFor(t, func() bool { return r.Stats().Entries >= 4 }) // periodic snapshot + 3
	var out bytes.Buffer
	done := make(chan error)
	go func() {
		_, err := r.Capture(ctx, &out, CaptureOptions{Duration: 300 * time.Millisecond, Reason: "test", FlushEvery: 50 * time.Millisecond})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	for i := 3; i < 6; i++ {
		b.Publish(rename(now, i))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h, recs, cr := readCapture(t, out.Bytes())
	if h.Host != "h1" || h.Reason != "test" || h.Format != capture.FormatName {
		t.Errorf("header = %+v", h)
	}
	var pids []uint32
	var snaps []string
	for _, rec := range recs {
		switch rec.Kind {
		case capture.KindEvent:
			pids = append(pids, rec.Event.Hdr().PID)
		case capture.KindSnapshot:
			snaps = append(snaps, rec.Snapshot.Reason)
			if string(rec.Snapshot.Sections["answer"]) != "42" || !strings.Contains(rec.Snapshot.Errors["broken"], "no such thing") ||
				!strings.Contains(rec.Snapshot.Errors["buggy"], "panicked") {
				t.Errorf("snapshot = %+v", rec.Snapshot)
			}
		}
	}
	if fmt.Sprint(pids) != "[0 1 2 3 4 5]" {
		t.Errorf("event pids = %v, want 0..5 once each, in order", pids)
	}
	if strings.Join(snaps, ",") != "periodic,capture_start,capture_end" {
		t.Errorf("snapshots = %v", snaps)
	}
	if !cr.Complete() || recs[len(recs)-1].End.Events != 6 {
		t.Errorf("end = %+v", recs[len(recs)-1].End)
	}
}

// failAfter accepts n bytes, then fails like a full disk.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errors.New("no space left on device")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestCaptureWriteErrorEnds(t *testing.T) {
	r, _ := New(Options{})
	for i := range 10000 {
		r.Record(rename(time.Now(), i))
	}
	_, err := r.Capture(context.Background(), &failAfter{n: 2000}, CaptureOptions{Duration: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("err = %v", err)
	}
	r.Record(rename(time.Now(), 1)) // the recorder goes on
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 2s")
}

// A storm faster than the recorder drains its queue ends as counted drops.
func TestBusDropsCounted(t *testing.T) {
	b := bus.New()
	r, _ := New(Options{Queue: 16, MaxBytes: 1 << 20})
	r.Subscribe(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	const n = 200_000
	now := time.Now()
	for i := range n {
		b.Publish(rename(now, i))
	}
	waitFor(t, func() bool { return len(r.sub.C()) == 0 })
	cancel()
	<-done
	st := r.Stats()
	recorded := uint64(st.Entries-1) + st.Evicted // minus the periodic snapshot
	if st.Dropped == 0 || recorded+st.Dropped != n {
		t.Errorf("recorded %d + dropped %d != published %d", recorded, st.Dropped, n)
	}
	if b.Dropped()["recorder"] != st.Dropped {
		t.Errorf("bus counts %d drops for the recorder, stats %d", b.Dropped()["recorder"], st.Dropped)
	}
	t.Logf("published %d, recorded %d, dropped %d (queue 16)", n, recorded, st.Dropped)
}
