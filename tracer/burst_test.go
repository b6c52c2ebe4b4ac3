package tracer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

// TestBurstAtDefaults: a burst of 10,000 renames failing with EXDEV, made
// while nobody reads the tracer's events, fits the default ring: every one
// is delivered and none lost. The ring's capacity makes this hold whatever
// the scheduler does (records of this test's paths are about 170 bytes: over
// 24,000 fit), so it asserts no timing.
func TestBurstAtDefaults(t *testing.T) {
	requireRoot(t)
	tr := startTracer(t, Options{Sensors: []string{SensorRename}})
	if st, _ := statusOf(tr, SensorRename); st.Mode == "" {
		t.Skipf("rename sensor unavailable: %s", st.Unavailable)
	}
	merged := overlay(t)
	oldPath, newPath := filepath.Join(merged, "dir"), filepath.Join(merged, "moved")
	const burst = 10_000
	for range burst {
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != unix.EXDEV {
			t.Fatalf("renameat2 on overlay: %v, want EXDEV", err)
		}
	}
	got := 0
	deadline := time.After(30 * time.Second)
	for got < burst {
		select {
		case ev := <-tr.Events():
			if r, ok := ev.(*event.RenameExdev); ok && r.PID == uint32(os.Getpid()) && r.OldPath == oldPath {
				got++
			}
		case <-deadline:
			st, _ := statusOf(tr, SensorRename)
			t.Fatalf("%d of %d events delivered within 30s; status %+v", got, burst, st)
		}
	}
	if st, _ := statusOf(tr, SensorRename); st.EventsLost != 0 {
		t.Errorf("%d events lost at the default ring size", st.EventsLost)
	}
}
