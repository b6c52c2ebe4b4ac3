package tracer

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// recalibrateEvery bounds how long a clock step (settimeofday, an NTP step)
// takes to reach event times. Between steps realtime - boottime is constant:
// NTP slews both clocks alike, and boottime keeps counting through suspend.
const recalibrateEvery = time.Second

// wallClock turns the kernel's boot-time stamps (bpf_ktime_get_boot_ns) into
// wall time with an offset measured once a second, instead of two
// clock_gettime system calls per event (Go has no vDSO path for BOOTTIME).
type wallClock struct {
	cal atomic.Pointer[calibration]
	mu  sync.Mutex // one recalibration at a time
	// read reads the clocks: boot, then realtime, then boot again (tests swap it).
	read func() (boot1, real, boot2 int64)
}

type calibration struct {
	offsetNs int64 // realtime - boottime, never below the true offset
	bootNs   int64 // boot time it was measured at
}

// wall is the one clock every decoder uses.
var wall = newWallClock(readClocks)

func newWallClock(read func() (int64, int64, int64)) *wallClock {
	c := &wallClock{read: read}
	c.calibrate()
	return c
}

func readClocks() (boot1, real, boot2 int64) {
	var b1, r, b2 unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b1)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b2)
	return b1.Nano(), r.Nano(), b2.Nano()
}

// calibrate measures the offset. Boot time is read before realtime, so
// real - boot1 is the true offset plus the time between the two reads: an
// event's wall time can come out late by that gap, never early (which would
// put it before the syscall that caused it). The tightest of a few tries
// keeps the gap small when the thread is preempted between reads.
func (c *wallClock) calibrate() *calibration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calibrateLocked()
}

// recalibrate calibrates unless another reader just did.
func (c *wallClock) recalibrate(bootNs int64) *calibration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cal := c.cal.Load(); bootNs-cal.bootNs <= int64(recalibrateEvery) {
		return cal
	}
	return c.calibrateLocked()
}

func (c *wallClock) calibrateLocked() *calibration {
	best, bestGap := calibration{}, int64(-1)
	for range 3 {
		b1, r, b2 := c.read()
		if gap := b2 - b1; bestGap < 0 || gap < bestGap {
			best, bestGap = calibration{offsetNs: r - b1, bootNs: b1}, gap
		}
	}
	c.cal.Store(&best)
	return &best
}

// toWall converts one boot-time stamp. It recalibrates when the stamp is a
// second past the last calibration: events themselves say how much time has
// passed, so an idle daemon reads no clock at all.
func (c *wallClock) toWall(bootNs uint64) time.Time {
	cal := c.cal.Load()
	if int64(bootNs)-cal.bootNs > int64(recalibrateEvery) {
		cal = c.recalibrate(int64(bootNs))
	}
	return time.Unix(0, int64(bootNs)+cal.offsetNs)
}
