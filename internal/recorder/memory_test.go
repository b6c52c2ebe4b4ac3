package recorder

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
)

// The recorder's byte accounting is what the Go heap really holds for it:
// fill it past its bound with events of varied sizes and compare its Bytes
// with the live heap it adds.
func TestAccountingMatchesHeap(t *testing.T) {
	const bound = 16 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := New(Options{MaxBytes: bound, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 100_000 {
		r.Record(&event.RenameExdev{
			Header:  event.Header{Time: now, Type: event.TypeRenameExdev, PID: uint32(i), Comm: "mv"},
			OldPath: fmt.Sprintf("/var/lib/app/%0*d", i%200, i),
			NewPath: "/var/lib/app/moved",
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := r.Stats()
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if st.Bytes > bound {
		t.Fatalf("recorder holds %d bytes by its account, over its bound %d", st.Bytes, bound)
	}
	if st.Evicted == 0 {
		t.Fatalf("nothing evicted: the test did not reach the bound (%d bytes held)", st.Bytes)
	}
	// Within 2%: counting lengths instead of allocations was 3% under.
	if diff := heap - st.Bytes; diff < -st.Bytes/50 || diff > st.Bytes/50 {
		t.Errorf("heap grew by %d bytes, recorder accounts %d: off by %d", heap, st.Bytes, diff)
	}
	t.Logf("heap +%d bytes, recorder accounts %d (%d entries)", heap, st.Bytes, st.Entries)
	runtime.KeepAlive(r)
}

// blockFirst blocks its first Write until release is closed.
type blockFirst struct {
	started, release chan struct{}
	once             bool
	buf              bytes.Buffer
}

func (b *blockFirst) Write(p []byte) (int, error) {
	if !b.once {
		b.once = true
		close(b.started)
		<-b.release
	}
	return b.buf.Write(p)
}

// A capture's past is views into the store's chunks: a storm that evicts
// every one of them while the capture is still writing must not change what
// the capture writes (dropped chunks are not reused while a capture runs).
func TestCapturePastSurvivesEviction(t *testing.T) {
	r, err := New(Options{MaxBytes: 64 << 10, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var want [][]byte
	for i := range 2000 {
		ev := rename(now, i)
		r.Record(ev)
		b, _ := event.AppendJSON(nil, ev)
		want = append(want, b)
	}
	st := r.Stats()
	want = want[len(want)-st.Entries:]
	out := &blockFirst{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := r.Capture(context.Background(), out, CaptureOptions{Duration: time.Millisecond})
		done <- err
	}()
	<-out.started // the past is taken; overwrite everything the recorder holds
	for i := range 20000 {
		r.Record(rename(now, 100000+i))
	}
	if ev := r.Stats().Evicted; ev < uint64(2000+st.Entries) {
		t.Fatalf("evicted %d: the storm did not replace the past", ev)
	}
	close(out.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, recs, _ := readCapture(t, out.buf.Bytes())
	var got [][]byte
	for _, rec := range recs {
		if rec.Kind == capture.KindEvent {
			b, _ := event.AppendJSON(nil, rec.Event)
			got = append(got, b)
		}
	}
	if len(got) < len(want) {
		t.Fatalf("capture has %d events, want at least the %d of the past", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("past event %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// Bytes counted is exactly the chunks held: their capacities plus the chunk list.
func TestAccountingIsChunks(t *testing.T) {
	r, _ := New(Options{MaxBytes: 1 << 20, Window: time.Hour})
	now := time.Now()
	for i := range 50_000 {
		r.Record(rename(now, i))
		if i%997 != 0 {
			continue
		}
		r.mu.Lock()
		s := &r.store
		var sum int64
		entries := 0
		for _, c := range s.chunks[s.head:] {
			sum += int64(cap(c))
		}
		eachEntry(s.view(), func(time.Time, bool, []byte) error { entries++; return nil })
		sum += int64(cap(s.spare)) + int64(cap(s.chunks))*sliceOverhead
		r.mu.Unlock()
		st := r.Stats()
		if st.Bytes != sum || st.Entries != entries || st.Bytes > 1<<20 {
			t.Fatalf("after %d events: stats %d bytes, %d entries; store holds %d bytes, %d entries (bound %d)", i+1, st.Bytes, st.Entries, sum, entries, 1<<20)
		}
	}
}
