package latency

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/sensor"
)

type fakeSource struct {
	lat    sensor.LatencySnapshot
	filt   sensor.SeccompSnapshot
	forgot []uint64
}

func (f *fakeSource) SyscallLatency() (sensor.LatencySnapshot, error)    { return f.lat, nil }
func (f *fakeSource) SeccompFilterTime() (sensor.SeccompSnapshot, error) { return f.filt, nil }
func (f *fakeSource) ForgetCgroups(ids []uint64)                         { f.forgot = append(f.forgot, ids...) }
func (f *fakeSource) TrackCgroups(map[uint64]bool) error                 { return nil }
func (f *fakeSource) MeasuredCgroups() []uint64                          { return nil }

type fakeResolver map[uint64]string

func (r fakeResolver) Lookup(id uint64) container.Container { return container.Container{ID: r[id]} }
func (r fakeResolver) ContainerCgroups() map[uint64]string  { return r }

const (
	ctrA = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
	ctrB = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
)

func TestCollectorLabelsAndForget(t *testing.T) {
	src := &fakeSource{
		lat: sensor.LatencySnapshot{SampleEvery: 2, Latency: []sensor.SyscallLatency{
			{CgroupID: 1, Seccomp: "filter", Hist: hist(8, 10, 3000), Calls: 21},
			{CgroupID: 2, Seccomp: "filter", Hist: hist(8, 5, 1500), Calls: 9}, // second cgroup of A
			{CgroupID: 3, Seccomp: "none", Hist: hist(8, 7, 2100), Calls: 15},
			{CgroupID: 9, Seccomp: "none", Hist: hist(10, 1, 1000), Calls: 3}, // host
		}, Syscalls: []sensor.SyscallStat{{CgroupID: 1, Nr: 110, Count: 10, SumNs: 3000}}, HistOverflow: 3},
		filt: sensor.SeccompSnapshot{Filter: []sensor.SeccompFilterTime{{CgroupID: 1, Filters: 2, Hist: hist(6, 10, 1000)}}, Unmatched: 1, Slept: 4},
	}
	res := fakeResolver{1: ctrA, 2: ctrA, 3: ctrB}
	l := New(Options{Source: src, Resolver: res, SyscallLabel: true, Label: func(id string) string { return id[:12] }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	want := `
# HELP observer_seccomp_filters Seccomp filters attached to the container's most recently seen filtered task.
# TYPE observer_seccomp_filters gauge
observer_seccomp_filters{container="aaaaaaaaaaaa"} 2
# HELP observer_syscall_top_calls_total Calls of each of the container's top syscalls by time spent (--syscall-label; the set can change between scrapes).
# TYPE observer_syscall_top_calls_total counter
observer_syscall_top_calls_total{container="aaaaaaaaaaaa",syscall="getppid"} 20
# HELP observer_syscalls_total Syscalls completed (counted at sys_exit, every one, sampled or not), by container and the task's seccomp mode.
# TYPE observer_syscalls_total counter
observer_syscalls_total{container="",seccomp="none"} 3
observer_syscalls_total{container="aaaaaaaaaaaa",seccomp="filter"} 30
observer_syscalls_total{container="bbbbbbbbbbbb",seccomp="none"} 15
# HELP observer_syscall_untracked_total Syscalls or seccomp filter runs the kernel did not record, by reason: a bounded map was full, per-thread storage failed, or (filter runs) an exit did not match its entry or the task slept in the filter call (user notifier, tracer).
# TYPE observer_syscall_untracked_total counter
observer_syscall_untracked_total{reason="filter_histogram_full"} 0
observer_syscall_untracked_total{reason="filter_slept"} 4
observer_syscall_untracked_total{reason="filter_thread_storage"} 0
observer_syscall_untracked_total{reason="filter_unmatched"} 1
observer_syscall_untracked_total{reason="histogram_full"} 3
observer_syscall_untracked_total{reason="per_syscall_full"} 0
observer_syscall_untracked_total{reason="thread_storage"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "observer_seccomp_filters", "observer_syscall_top_calls_total", "observer_syscall_untracked_total", "observer_syscalls_total"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "observer_syscall_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			counts[strings.Join(labels, ",")] = m.GetHistogram().GetSampleCount()
		}
	}
	// A's two cgroups merge; histogram counts are scaled by the sampling rate
	// (observer_syscalls_total above is exact, not scaled).
	for k, n := range map[string]uint64{"container=aaaaaaaaaaaa,seccomp=filter": 30, "container=bbbbbbbbbbbb,seccomp=none": 14, "container=,seccomp=none": 2} {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	// A is gone: both of its cgroups are deleted in the kernel.
	l.Forget(ctrA)
	slices.Sort(src.forgot)
	if !slices.Equal(src.forgot, []uint64{1, 2}) {
		t.Errorf("forgot cgroups %v, want [1 2]", src.forgot)
	}
}
