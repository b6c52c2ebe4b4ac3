package sensor

import "errors"

// DefaultSyscallSampleEvery is the daemon's default for timing one syscall in
// N (every syscall is counted regardless). Timing needs a clock read at
// sys_enter and at sys_exit; on retpoline hosts those two reads alone cost
// about as much as the syscall hooks themselves (`make bench`), so timing
// every syscall would triple the observer's syscall tax. One in 16 keeps the
// latency sensor within 1.5x the cost of empty hooks and still gives a
// container doing 1000 syscalls/s some 3700 timed syscalls a minute.
const DefaultSyscallSampleEvery = 16

// HistBuckets is the number of log2 buckets the kernel keeps per histogram.
const HistBuckets = 40

// Log2Histogram is an in-kernel latency histogram, summed over CPUs: Buckets[i]
// counts durations d with 2^i <= d < 2^(i+1) nanoseconds (bucket 0 also holds
// 0 and 1 ns; the last bucket holds everything longer).
type Log2Histogram struct {
	Buckets [HistBuckets]uint64
	SumNs   uint64
}

// Count is the number of observations.
func (h Log2Histogram) Count() uint64 {
	var n uint64
	for _, b := range h.Buckets {
		n += b
	}
	return n
}

// Add merges o into h.
func (h *Log2Histogram) Add(o *Log2Histogram) {
	for i, b := range o.Buckets {
		h.Buckets[i] += b
	}
	h.SumNs += o.SumNs
}

// Scale multiplies every count by n (sampled histograms estimate the whole).
func (h *Log2Histogram) Scale(n uint64) {
	for i := range h.Buckets {
		h.Buckets[i] *= n
	}
	h.SumNs *= n
}

// SyscallLatency is the syscall duration histogram of one cgroup in one seccomp mode.
type SyscallLatency struct {
	CgroupID uint64
	Seccomp  string // "none", "strict", "filter", "dead"
	// Hist holds the timed syscalls (one in SampleEvery); Calls counts them all.
	Hist  Log2Histogram
	Calls uint64
}

// SyscallStat counts one syscall number in one cgroup.
type SyscallStat struct {
	CgroupID uint64
	Nr       uint32
	Count    uint64
	SumNs    uint64
}

// LatencySnapshot is what the latency sensor holds at one moment.
type LatencySnapshot struct {
	// SampleEvery is the sampling rate: histograms and per-syscall counts are
	// of one syscall in SampleEvery; SyscallLatency.Calls are exact.
	SampleEvery uint32
	Latency     []SyscallLatency
	// Syscalls is empty unless the per-syscall breakdown is on.
	Syscalls []SyscallStat
	// Overflow counts syscalls not recorded because a bounded map was full
	// (histogram: a new cgroup; per-syscall: a new pair) or the per-thread start
	// could not be stored.
	HistOverflow, SyscallOverflow, StorageOverflow uint64
}

// SeccompFilterTime is the seccomp filter evaluation time of one cgroup.
type SeccompFilterTime struct {
	CgroupID uint64
	Filters  uint64 // filters attached to the last task seen in the cgroup
	Hist     Log2Histogram
}

// SeccompSnapshot is what the seccomp sensor holds at one moment.
type SeccompSnapshot struct {
	// SampleEvery: one filter run in SampleEvery was timed.
	SampleEvery uint32
	Filter      []SeccompFilterTime
	// Filter runs not in Filter: HistOverflow, a new cgroup did not fit;
	// StorageOverflow, the per-thread start could not be stored; Unmatched, an
	// exit without its entry or the reverse (hooks attached mid-call, a
	// kretprobe out of instances); Slept, the task slept inside the filter call
	// (a SECCOMP_RET_USER_NOTIF supervisor or a SECCOMP_RET_TRACE tracer), so
	// the time was not filter cost.
	HistOverflow, StorageOverflow, Unmatched, Slept uint64
}

// ErrNotRunning is returned by on-demand readers (histograms read on scrape)
// when their sensor is not attached.
var ErrNotRunning = errors.New("sensor not running")
