package recorder

import (
	"fmt"
	"runtime"
	"testing"
	"time"

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
