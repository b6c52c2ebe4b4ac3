package latency

import (
	"math"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/syscalls"
)

// SyscallName names a syscall number of the running architecture, or
// "syscall_N" for one it does not know.
func SyscallName(nr uint32) string { return syscalls.Name(int64(nr)) }

// bucketBounds returns bucket i's range in nanoseconds: [2^i, 2^(i+1)),
// with bucket 0 starting at 0.
func bucketBounds(i int) (lo, hi float64) {
	hi = math.Ldexp(1, i+1)
	if i == 0 {
		return 0, hi
	}
	return math.Ldexp(1, i), hi
}

// Quantile estimates the q-quantile (0 < q <= 1) of a log2 histogram in
// seconds, interpolating linearly inside the bucket that holds it. The answer
// is within a factor of two of the truth, which is what log2 buckets can give.
// An empty histogram gives NaN.
func Quantile(h sensor.Log2Histogram, q float64) float64 {
	total := h.Count()
	if total == 0 || q <= 0 || q > 1 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range h.Buckets {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			lo, hi := bucketBounds(i)
			return (lo + (hi-lo)*(rank-seen)/float64(n)) / 1e9
		}
		seen += float64(n)
	}
	_, hi := bucketBounds(len(h.Buckets) - 1)
	return hi / 1e9
}

// Sub returns a - b bucket by bucket, for rates between two snapshots; a
// counter that went down (the kernel entry was recreated) counts from zero.
func Sub(a, b sensor.Log2Histogram) sensor.Log2Histogram {
	if a.Count() < b.Count() || a.SumNs < b.SumNs {
		return a
	}
	var d sensor.Log2Histogram
	for i := range a.Buckets {
		if a.Buckets[i] < b.Buckets[i] {
			return a
		}
		d.Buckets[i] = a.Buckets[i] - b.Buckets[i]
	}
	d.SumNs = a.SumNs - b.SumNs
	return d
}

// promBuckets turns a log2 histogram into Prometheus' cumulative buckets in
// seconds. Upper bounds are 2^k ns for k in [minExp, maxExp]: the same set on
// every scrape, from 128 ns to about 34 s; the rest falls into +Inf.
func promBuckets(h sensor.Log2Histogram) (count uint64, sumSeconds float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, maxExp-minExp+1)
	var cum uint64
	for i, n := range h.Buckets {
		cum += n
		// Bucket i holds d < 2^(i+1) ns.
		if k := i + 1; k >= minExp && k <= maxExp {
			buckets[math.Ldexp(1, k)/1e9] = cum
		} else if k < minExp {
			buckets[math.Ldexp(1, minExp)/1e9] = cum
		}
	}
	return cum, float64(h.SumNs) / 1e9, buckets
}

const (
	minExp = 7  // 128 ns
	maxExp = 35 // 34.4 s
)
