package tracer

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

// The offset comes from the tightest of the reads, as realtime minus the boot
// time read before it, so it can only be late.
func TestWallClockOffsetFromTightestRead(t *testing.T) {
	reads := [][3]int64{{1000, 5000, 1900}, {2000, 6010, 2010}, {3000, 7500, 3400}}
	n := 0
	c := newWallClock(func() (int64, int64, int64) {
		r := reads[n%len(reads)]
		n++
		return r[0], r[1], r[2]
	})
	if got := c.toWall(2005).UnixNano(); got != 2005+4010 {
		t.Errorf("wall = %d, want %d (offset 4010 from the 10 ns read)", got, 2005+4010)
	}
	if n != 3 {
		t.Errorf("%d clock reads, want 3", n)
	}
}

// A stamp more than recalibrateEvery past the calibration recalibrates once;
// stamps within it read no clock.
func TestWallClockRecalibrates(t *testing.T) {
	offset, reads := int64(100), 0
	c := newWallClock(func() (int64, int64, int64) {
		reads++
		return 0, offset, 0
	})
	step := int64(recalibrateEvery)
	if got := c.toWall(uint64(step)).UnixNano(); got != step+100 {
		t.Errorf("wall = %d, want %d", got, step+100)
	}
	offset = 5000 // the realtime clock was stepped
	if got := c.toWall(uint64(step)).UnixNano(); got != step+100 || reads != 3 {
		t.Errorf("within the interval: wall = %d after %d reads, want %d after 3", got, reads, step+100)
	}
	if got := c.toWall(uint64(step + 1)).UnixNano(); got != step+1+5000 || reads != 6 {
		t.Errorf("past the interval: wall = %d after %d reads, want %d after 6", got, reads, step+1+5000)
	}
}

// Against the real kernel: every event's time is at or after a wall clock
// read just before its syscall (and not far after the syscall returned).
func TestEventTimeNotBeforeSyscall(t *testing.T) {
	requireRoot(t)
	tr := startTracer(t, Options{Sensors: []string{SensorRename}})
	if st, _ := statusOf(tr, SensorRename); st.Mode == "" {
		t.Skipf("rename sensor unavailable: %s", st.Unavailable)
	}
	merged := overlay(t)
	oldPath, newPath := filepath.Join(merged, "dir"), filepath.Join(merged, "moved")
	const n = 2000
	before, after := make([]time.Time, n), make([]time.Time, n)
	runtime.LockOSThread()
	tid := uint32(unix.Gettid())
	for i := range n {
		before[i] = time.Now()
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != unix.EXDEV {
			t.Fatalf("renameat2 on overlay: %v, want EXDEV", err)
		}
		after[i] = time.Now()
	}
	runtime.UnlockOSThread()
	for i := range n {
		ev := waitEvent(t, tr, func(ev event.Event) bool {
			r, ok := ev.(*event.RenameExdev)
			return ok && r.TID == tid && r.PID == uint32(os.Getpid())
		})
		got := ev.Hdr().Time
		if got.Before(before[i]) {
			t.Fatalf("event %d at %v, %v before the wall clock read ahead of its syscall", i, got, before[i].Sub(got))
		}
		if got.Sub(after[i]) > time.Second {
			t.Fatalf("event %d at %v, %v after its syscall returned", i, got, got.Sub(after[i]))
		}
	}
}

func TestRingSizeDefaults(t *testing.T) {
	for _, s := range sensors() {
		if s.name == SensorRename {
			if got := s.ringSize(&Options{}); got != 4<<20 {
				t.Errorf("rename ring = %d, want 4 MiB", got)
			}
			if got := s.ringSize(&Options{RingBufferBytes: 4096}); got != 4096 {
				t.Errorf("rename ring with --ring-buffer-size 4096 = %d", got)
			}
		}
		if got := s.ringSize(&Options{}); got&(got-1) != 0 || got < 4096 {
			t.Errorf("%s ring = %d, not a power of two of at least 4096", s.name, got)
		}
	}
}
