package latency

import (
	"math"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/sensor"
)

func TestQuantile(t *testing.T) {
	var h sensor.Log2Histogram
	if !math.IsNaN(Quantile(h, 0.5)) {
		t.Error("empty histogram: want NaN")
	}
	h.Buckets[8] = 99 // [256, 512) ns
	h.Buckets[23] = 1 // [8.4, 16.8) ms
	if p50 := Quantile(h, 0.5); p50 < 256e-9 || p50 >= 512e-9 {
		t.Errorf("p50 = %g, want in [256ns, 512ns)", p50)
	}
	if p99 := Quantile(h, 0.99); p99 < 256e-9 || p99 > 512e-9 {
		t.Errorf("p99 = %g, want <= 512ns (99 of 100 are fast)", p99)
	}
	if p100 := Quantile(h, 1); p100 < 8e-3 || p100 > 16.8e-3 {
		t.Errorf("p100 = %g, want in the 10 ms bucket", p100)
	}
	h.Buckets[sensor.HistBuckets-1] = 1000
	if q := Quantile(h, 1); q < 500 {
		t.Errorf("overflow bucket quantile = %g s, want its upper bound", q)
	}
}

func TestPromBuckets(t *testing.T) {
	var h sensor.Log2Histogram
	h.Buckets[0] = 1  // < 2 ns
	h.Buckets[8] = 2  // < 512 ns
	h.Buckets[39] = 3 // beyond the last bound
	h.SumNs = 2e9
	count, sum, b := promBuckets(h)
	if count != 6 || sum != 2 {
		t.Errorf("count %d sum %g, want 6 and 2", count, sum)
	}
	if len(b) != maxExp-minExp+1 {
		t.Errorf("%d buckets, want %d (a fixed set)", len(b), maxExp-minExp+1)
	}
	if got := b[128e-9]; got != 1 {
		t.Errorf("le=128ns: %d, want 1", got)
	}
	if got := b[512e-9]; got != 3 {
		t.Errorf("le=512ns: %d, want 3", got)
	}
	if got := b[math.Ldexp(1, maxExp)/1e9]; got != 3 {
		t.Errorf("last bound: %d, want 3 (the rest is +Inf)", got)
	}
}

func TestSub(t *testing.T) {
	var a, b sensor.Log2Histogram
	a.Buckets[3], b.Buckets[3] = 10, 4
	a.SumNs, b.SumNs = 100, 40
	d := Sub(a, b)
	if d.Buckets[3] != 6 || d.SumNs != 60 {
		t.Errorf("Sub = %+v", d)
	}
	if d := Sub(b, a); d.Buckets[3] != 4 {
		t.Errorf("reset counter: want the newer value, got %+v", d)
	}
}

func TestSyscallName(t *testing.T) {
	if SyscallName(unix.SYS_GETPPID) != "getppid" || SyscallName(unix.SYS_NANOSLEEP) != "nanosleep" || SyscallName(9999) != "syscall_9999" {
		t.Error(SyscallName(unix.SYS_GETPPID), SyscallName(unix.SYS_NANOSLEEP), SyscallName(9999))
	}
}
