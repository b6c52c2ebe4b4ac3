package latency

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/sensor"
)

var (
	syscallDurationDesc = prometheus.NewDesc("observer_syscall_duration_seconds",
		"Syscall duration from the sys_enter to the sys_exit tracepoint (seccomp filters run before sys_enter and are not included), by container and the task's seccomp mode. Estimated from the timed syscalls, one in --syscall-sample-every, scaled up.",
		[]string{"container", "seccomp"}, nil)
	syscallsDesc = prometheus.NewDesc("observer_syscalls_total",
		"Syscalls completed (counted at sys_exit, every one, sampled or not), by container and the task's seccomp mode.",
		[]string{"container", "seccomp"}, nil)
	filterDurationDesc = prometheus.NewDesc("observer_seccomp_filter_duration_seconds",
		"Time spent evaluating seccomp filters per syscall (__seccomp_filter), by container.",
		[]string{"container"}, nil)
	filtersDesc = prometheus.NewDesc("observer_seccomp_filters",
		"Seccomp filters attached to the container's most recently seen filtered task.",
		[]string{"container"}, nil)
	syscallCallsDesc = prometheus.NewDesc("observer_syscall_top_calls_total",
		"Calls of each of the container's top syscalls by time spent (--syscall-label; the set can change between scrapes), estimated from the timed syscalls like the duration histogram.",
		[]string{"container", "syscall"}, nil)
	syscallSecondsDesc = prometheus.NewDesc("observer_syscall_top_seconds_total",
		"Time spent in each of the container's top syscalls (--syscall-label), estimated from the timed syscalls.",
		[]string{"container", "syscall"}, nil)
	untrackedDesc = prometheus.NewDesc("observer_syscall_untracked_total",
		"Syscalls or seccomp filter runs the kernel did not record, by reason: a bounded map was full, per-thread storage failed, or (filter runs) an exit did not match its entry or the task slept in the filter call (user notifier, tracer).",
		[]string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (l *Latency) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{syscallDurationDesc, syscallsDesc, filterDurationDesc, filtersDesc, untrackedDesc} {
		ch <- d
	}
	if l.opts.SyscallLabel {
		ch <- syscallCallsDesc
		ch <- syscallSecondsDesc
	}
}

// Collect implements prometheus.Collector: it reads the kernel's histograms.
// Containers past the label bound share the "other" label, so series are merged
// by label first.
func (l *Latency) Collect(ch chan<- prometheus.Metric) {
	rep := l.Report()
	type modeKey struct{ label, mode string }
	lat := map[modeKey]*sensor.Log2Histogram{}
	calls := map[modeKey]uint64{}
	filt := map[string]*sensor.Log2Histogram{}
	filters := map[string]uint64{}
	type scKey struct{ label, name string }
	top := map[scKey]*SyscallStat{}
	for _, c := range rep.Containers {
		label := ""
		if c.ID != "" {
			label = l.opts.Label(c.ID)
		}
		for _, m := range c.Seccomp {
			k := modeKey{label, m.Mode}
			if lat[k] == nil {
				lat[k] = &sensor.Log2Histogram{}
			}
			lat[k].Add(&m.Hist)
			calls[k] += m.Calls
		}
		if c.Filter != nil {
			if filt[label] == nil {
				filt[label] = &sensor.Log2Histogram{}
			}
			filt[label].Add(&c.Filter.Hist)
			filters[label] = max(filters[label], c.Filter.Filters)
		}
		if l.opts.SyscallLabel {
			for _, s := range c.TopSyscalls {
				k := scKey{label, s.Name}
				if top[k] == nil {
					top[k] = &SyscallStat{}
				}
				top[k].Count += s.Count
				top[k].SumNs += s.SumNs
			}
		}
	}
	for k, h := range lat {
		count, sum, b := promBuckets(*h)
		ch <- prometheus.MustNewConstHistogram(syscallDurationDesc, count, sum, b, k.label, k.mode)
		ch <- prometheus.MustNewConstMetric(syscallsDesc, prometheus.CounterValue, float64(calls[k]), k.label, k.mode)
	}
	for label, h := range filt {
		count, sum, b := promBuckets(*h)
		ch <- prometheus.MustNewConstHistogram(filterDurationDesc, count, sum, b, label)
		ch <- prometheus.MustNewConstMetric(filtersDesc, prometheus.GaugeValue, float64(filters[label]), label)
	}
	for k, s := range top {
		ch <- prometheus.MustNewConstMetric(syscallCallsDesc, prometheus.CounterValue, float64(s.Count), k.label, k.name)
		ch <- prometheus.MustNewConstMetric(syscallSecondsDesc, prometheus.CounterValue, float64(s.SumNs)/1e9, k.label, k.name)
	}
	for reason, n := range rep.Untracked {
		ch <- prometheus.MustNewConstMetric(untrackedDesc, prometheus.CounterValue, float64(n), reason)
	}
}

// Summary is the /status view: per container, the syscall count and mean
// duration by seccomp mode and the top syscalls.
type Summary struct {
	SampleEvery  uint32             `json:"sample_every"`
	LatencyError string             `json:"latency_error,omitempty"`
	FilterError  string             `json:"filter_error,omitempty"`
	Containers   []ContainerSummary `json:"containers"`
}

// ContainerSummary is one container in /status.
type ContainerSummary struct {
	ID          string        `json:"id"`
	Name        string        `json:"name,omitempty"`
	Seccomp     []ModeSummary `json:"seccomp"`
	Filters     uint64        `json:"seccomp_filters,omitempty"`
	TopSyscalls []SyscallStat `json:"top_syscalls,omitempty"`
}

// ModeSummary is a histogram reduced to what /status shows.
type ModeSummary struct {
	Mode     string  `json:"mode"`
	Syscalls uint64  `json:"syscalls"`
	MeanNs   float64 `json:"mean_ns"`
}

// Summary reads the kernel for /status.
func (l *Latency) Summary() Summary {
	rep := l.Report()
	s := Summary{SampleEvery: rep.SampleEvery, LatencyError: rep.LatencyError, FilterError: rep.FilterError, Containers: []ContainerSummary{}}
	for _, c := range rep.Containers {
		cs := ContainerSummary{ID: c.ID, Name: c.Name, TopSyscalls: c.TopSyscalls}
		for _, m := range c.Seccomp {
			ms := ModeSummary{Mode: m.Mode, Syscalls: m.Calls}
			if n := m.Hist.Count(); n > 0 {
				ms.MeanNs = float64(m.Hist.SumNs) / float64(n)
			}
			cs.Seccomp = append(cs.Seccomp, ms)
		}
		if c.Filter != nil {
			cs.Filters = c.Filter.Filters
		}
		s.Containers = append(s.Containers, cs)
	}
	return s
}
