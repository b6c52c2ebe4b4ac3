package tracer

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

func TestWakePolicy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var p wakePolicy

	// 100 records/s, each after a wakeup: no deadline.
	for i := range 10 {
		if sw, dl := p.drained(at(time.Duration(i)*10*time.Millisecond), 1, false); sw || !dl.IsZero() || p.polling {
			t.Fatalf("record %d at 100/s: switched %v, deadline %v, polling %v", i, sw, dl, p.polling)
		}
	}
	// pollEnter records within a period: polling, the next read a period on.
	now := at(time.Second)
	p.drained(now, pollEnter-3, false)
	sw, dl := p.drained(now.Add(time.Millisecond), 3, false)
	if !sw || !p.polling || !dl.Equal(now.Add(time.Millisecond+pollPeriod)) {
		t.Fatalf("%d records in 1ms: switched %v, polling %v, deadline %v", pollEnter, sw, p.polling, dl)
	}
	tick := dl
	// A watermark wakeup before the tick leaves the tick where it was.
	if sw, dl := p.drained(tick.Add(-5*time.Millisecond), 100, false); sw || !dl.Equal(tick) {
		t.Fatalf("watermark wakeup: switched %v, deadline %v, want %v", sw, dl, tick)
	}
	// The tick, with records since the last: polling goes on.
	if sw, dl := p.drained(tick, pollLeave+1, true); sw || !p.polling || !dl.Equal(tick.Add(pollPeriod)) {
		t.Fatalf("busy tick: switched %v, polling %v, deadline %v", sw, p.polling, dl)
	}
	tick = tick.Add(pollPeriod)
	// A tick with at most pollLeave records: back to wakeups, with one more
	// timed read for records submitted while the flag changed.
	sw, dl = p.drained(tick, pollLeave, true)
	if !sw || p.polling || !dl.Equal(tick.Add(pollPeriod)) {
		t.Fatalf("quiet tick: switched %v, polling %v, deadline %v", sw, p.polling, dl)
	}
	// A wakeup before that read keeps it due.
	if sw, dl2 := p.drained(tick.Add(time.Millisecond), 1, false); sw || !dl2.Equal(dl) {
		t.Fatalf("wakeup while settling: switched %v, deadline %v, want %v", sw, dl2, dl)
	}
	// Once it has come, no deadline.
	if sw, dl := p.drained(dl, 0, true); sw || !dl.IsZero() || p.polling {
		t.Fatalf("after settling: switched %v, deadline %v, polling %v", sw, dl, p.polling)
	}
}

// TestPolledRecordsDelivered: renames failing with EXDEV at 2,000/s switch the
// rename sensor's reader to polling (the programs' reader_polling flag reads
// 1), every one is delivered, and once they stop the reader goes back to
// wakeups: a single rename then reaches it too. The bounds are liveness
// bounds (seconds), not timings.
func TestPolledRecordsDelivered(t *testing.T) {
	requireRoot(t)
	tr := startTracer(t, Options{Sensors: []string{SensorRename}})
	st, _ := statusOf(tr, SensorRename)
	if st.Mode == "" {
		t.Skipf("rename sensor unavailable: %s", st.Unavailable)
	}
	r := tr.running[0]
	if r.polling == nil {
		t.Fatal("rename sensor's reader_polling flag is not shared with userspace")
	}
	flag := func() uint32 {
		var v uint32
		if err := r.polling.Get(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	merged := overlay(t)
	oldPath, newPath := filepath.Join(merged, "dir"), filepath.Join(merged, "moved")
	rename := func() {
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != unix.EXDEV {
			t.Fatalf("renameat2 on overlay: %v, want EXDEV", err)
		}
	}
	mine := func(ev event.Event) bool {
		e, ok := ev.(*event.RenameExdev)
		return ok && e.PID == uint32(os.Getpid()) && e.OldPath == oldPath
	}
	var count atomic.Int64
	all := make(chan struct{})
	stop := make(chan struct{})
	exited := make(chan struct{})
	// It returns once the counting goroutine no longer takes events.
	stopCounting := sync.OnceFunc(func() { close(stop); <-exited })
	defer stopCounting()
	const storm = 500
	go func() {
		defer close(exited)
		for {
			select {
			case ev := <-tr.Events():
				if mine(ev) && count.Add(1) == storm {
					close(all)
				}
			case <-stop:
				return
			}
		}
	}()
	// Four renames every 2 ms: 2,000/s, and still 400/s (above the 240/s
	// that starts polling) on a guest whose timer ticks come 10 ms apart.
	sawPolling := false
	tick := time.NewTicker(2 * time.Millisecond)
	for range storm / 4 {
		<-tick.C
		for range 4 {
			rename()
		}
		sawPolling = sawPolling || flag() == 1
	}
	tick.Stop()
	if !sawPolling {
		t.Error("reader never switched to polling at 2,000 records/s")
	}
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		st, _ := statusOf(tr, SensorRename)
		t.Fatalf("%d of %d events delivered within 5s; status %+v", count.Load(), storm, st)
	}
	for end := time.Now().Add(5 * time.Second); flag() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("reader still polling 5s after the storm")
		}
	}
	stopCounting()
	if st, _ := statusOf(tr, SensorRename); st.EventsLost != 0 {
		t.Errorf("%d events lost", st.EventsLost)
	}
	rename()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-tr.Events():
			if mine(ev) {
				return
			}
		case <-deadline:
			t.Fatal("a rename after the storm was not delivered within 5s")
		}
	}
}
