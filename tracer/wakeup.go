package tracer

import "time"

// How a sensor's reader waits for records (bpf/common.h, submit_event). Each
// wakeup of the Go runtime costs tens of microseconds (a thread woken, the
// reader, the pipeline and each consumer scheduled, sysmon ticking while they
// run), far more than a record. So at low rates each record wakes the reader
// and reaches userspace at once; from pollEnter records in a pollPeriod
// (240/s) the reader reads the ring on a timer instead, once a pollPeriod, and
// records wake it only when the ring is a quarter full (wakeWatermark), which
// leaves three quarters of it for a burst while the reader catches up. It goes
// back to wakeups at a timed read that found at most pollLeave records since
// the one before (120/s, so 100/s after a storm is woken again); the gap
// between the two keeps a rate near either from switching modes on every read.
//
// The period trades latency at high rates for CPU: at 1,000 records/s the
// daemon spent 16 µs of CPU a record reading every 20 ms and 10 µs every 50 ms
// (make bench-events, one Go processor).
const (
	pollPeriod = 50 * time.Millisecond
	pollEnter  = 12
	pollLeave  = 6
)

// wakeWatermark is how full (bytes) a polled ring is when its records wake the reader.
func wakeWatermark(ringBytes int) int { return ringBytes / 4 }

// wakePolicy is a reader's choice of how to wait, updated after each drain of
// its ring. Its zero value waits for wakeups.
type wakePolicy struct {
	polling bool
	start   time.Time // when the period being counted began
	count   int       // records read in that period
	// settleUntil, after polling ends, is when the reader reads the ring once
	// more without a wakeup: a record submitted by a program that read the
	// polling flag before it changed woke nobody.
	settleUntil time.Time
}

// drained takes the n records a drain read at now; timedOut says whether the
// wait before it ended at its deadline rather than with a wakeup. It returns
// whether the reader switched modes (and must tell the kernel), and the
// deadline of its next wait (zero: none, wait for a wakeup however long).
func (p *wakePolicy) drained(now time.Time, n int, timedOut bool) (switched bool, deadline time.Time) {
	if p.start.IsZero() {
		p.start = now
	}
	if p.polling {
		p.count += n
		next := p.start.Add(pollPeriod)
		if !timedOut && now.Before(next) {
			return false, next // a watermark wakeup: the period goes on
		}
		if p.count <= pollLeave {
			p.polling = false
			p.settleUntil = now.Add(pollPeriod)
			p.start, p.count = now, 0
			return true, p.settleUntil
		}
		p.start, p.count = now, 0
		return false, now.Add(pollPeriod)
	}
	if now.Sub(p.start) >= pollPeriod {
		p.start, p.count = now, 0
	}
	p.count += n
	if p.count >= pollEnter {
		p.polling = true
		p.start, p.count = now, 0
		p.settleUntil = time.Time{}
		return true, now.Add(pollPeriod)
	}
	if now.Before(p.settleUntil) {
		return false, p.settleUntil
	}
	p.settleUntil = time.Time{}
	return false, time.Time{}
}
