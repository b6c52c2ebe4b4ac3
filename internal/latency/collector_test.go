package latency

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/syscalls"
)

type fakeSource struct {
	lat    sensor.LatencySnapshot
	filt   sensor.SeccompSnapshot
	forgot []uint64
}

func (f *fakeSource) SyscallLatency() (sensor.LatencySnapshot, error)    { return f.lat, nil }
func (f *fakeSource) SeccompFilterTime() (sensor.SeccompSnapshot, error) { return f.filt, nil }
func (f *fakeSource) TrackCgroups(map[uint64]bool) error                 { return nil }

// ForgetCgroups deletes the cgroups' entries, as the kernel maps do.
func (f *fakeSource) ForgetCgroups(ids []uint64) {
	f.forgot = append(f.forgot, ids...)
	f.lat.Latency = slices.DeleteFunc(f.lat.Latency, func(l sensor.SyscallLatency) bool { return slices.Contains(ids, l.CgroupID) })
	f.lat.Syscalls = slices.DeleteFunc(f.lat.Syscalls, func(s sensor.SyscallStat) bool { return slices.Contains(ids, s.CgroupID) })
	f.filt.Filter = slices.DeleteFunc(f.filt.Filter, func(s sensor.SeccompFilterTime) bool { return slices.Contains(ids, s.CgroupID) })
}

func (f *fakeSource) MeasuredCgroups() []uint64 {
	var ids []uint64
	for _, l := range f.lat.Latency {
		ids = append(ids, l.CgroupID)
	}
	for _, s := range f.filt.Filter {
		ids = append(ids, s.CgroupID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// fakeResolver maps cgroup ids to container ids; removedCgroup marks one gone.
type fakeResolver map[uint64]string

const removedCgroup = "(removed)"

func (r fakeResolver) Lookup(id uint64) container.Container {
	if r[id] == removedCgroup {
		return container.Container{}
	}
	return container.Container{ID: r[id]}
}
func (r fakeResolver) ContainerCgroups() map[uint64]string { return r }
func (r fakeResolver) Removed(id uint64) bool              { return r[id] == removedCgroup }

const (
	ctrA = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
	ctrB = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
)

// nativeNr is a syscall's number on the architecture running the test: the
// collector names numbers with the native table.
func nativeNr(t *testing.T, name string) uint32 {
	t.Helper()
	nr, ok := syscalls.Native.Number(name)
	if !ok {
		t.Fatalf("no %s syscall here", name)
	}
	return uint32(nr)
}

func TestCollectorLabelsAndForget(t *testing.T) {
	src := &fakeSource{
		lat: sensor.LatencySnapshot{SampleEvery: 2, Latency: []sensor.SyscallLatency{
			{CgroupID: 1, Seccomp: "filter", Hist: hist(8, 10, 3000), Calls: 21},
			{CgroupID: 2, Seccomp: "filter", Hist: hist(8, 5, 1500), Calls: 9}, // second cgroup of A
			{CgroupID: 3, Seccomp: "none", Hist: hist(8, 7, 2100), Calls: 15},
			{CgroupID: 9, Seccomp: "none", Hist: hist(10, 1, 1000), Calls: 3}, // host
		}, Syscalls: []sensor.SyscallStat{{CgroupID: 1, Nr: nativeNr(t, "getppid"), Count: 10, SumNs: 3000}}, HistOverflow: 3},
		filt: sensor.SeccompSnapshot{SampleEvery: 2, Filter: []sensor.SeccompFilterTime{{CgroupID: 1, Filters: 2, Hist: hist(6, 10, 1000)}}, Unmatched: 1, Slept: 4},
	}
	res := fakeResolver{1: ctrA, 2: ctrA, 3: ctrB}
	l := New(Options{Source: src, Resolver: res, SyscallLabel: true, Label: func(id string) string { return id[:12] }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	want := `
# HELP observer_seccomp_filters Seccomp filters attached to the container's most recently seen filtered task.
# TYPE observer_seccomp_filters gauge
observer_seccomp_filters{container="aaaaaaaaaaaa"} 2
# HELP observer_syscall_top_calls_total Calls of each of the container's top syscalls by time spent (--syscall-label; the set can change between scrapes), estimated from the timed syscalls like the duration histogram.
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
		if mf.GetName() == "observer_seccomp_filter_duration_seconds" {
			// Sampled filter runs are scaled up like syscalls.
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 20 {
				t.Errorf("filter runs: %d, want 10 timed x 2", n)
			}
		}
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

// Host cgroups that are gone leave the kernel maps, but the host's series keep
// their figures: they are sums over host cgroups and counters must not go down.
func TestRetireGoneHostCgroups(t *testing.T) {
	src := &fakeSource{
		lat: sensor.LatencySnapshot{SampleEvery: 4, Latency: []sensor.SyscallLatency{
			{CgroupID: 1, Seccomp: "none", Hist: hist(8, 10, 3000), Calls: 41},
			{CgroupID: 8, Seccomp: "none", Hist: hist(8, 5, 1500), Calls: 19},   // host, live
			{CgroupID: 9, Seccomp: "none", Hist: hist(10, 2, 2048), Calls: 9},   // host, gone
			{CgroupID: 9, Seccomp: "filter", Hist: hist(10, 1, 1024), Calls: 3}, // host, gone
		}, Syscalls: []sensor.SyscallStat{{CgroupID: 9, Nr: 39, Count: 2, SumNs: 100}, {CgroupID: 8, Nr: 39, Count: 1, SumNs: 50}}},
		filt: sensor.SeccompSnapshot{Filter: []sensor.SeccompFilterTime{{CgroupID: 9, Filters: 3, Hist: hist(6, 1, 70)}}},
	}
	res := fakeResolver{1: ctrA, 9: removedCgroup}
	l := New(Options{Source: src, Resolver: res})
	before := l.Report()

	l.refresh()
	if !slices.Equal(src.forgot, []uint64{9}) {
		t.Fatalf("forgot %v, want the gone host cgroup [9] only", src.forgot)
	}
	after := l.Report()
	// All but the filter count, a gauge of live tasks: the gone cgroup's 3 leave.
	if f := after.Containers[0].Filter; f == nil || f.Filters != 0 {
		t.Errorf("host filter figures after retiring: %+v, want the time kept and no filter count", f)
	} else {
		before.Containers[0].Filter.Filters = 0
	}
	if !equalJSON(t, before.Containers, after.Containers) {
		t.Errorf("figures changed when the host cgroup was retired:\nbefore %+v\nafter  %+v", before.Containers, after.Containers)
	}

	// Retired figures add to what the host's live cgroups do next.
	src.lat.Latency[1].Calls += 100
	l.refresh() // nothing more to retire
	host := l.Report().Containers[0]
	if host.ID != "" || host.mode("none").Calls != 19+9+100 || host.mode("filter").Calls != 3 {
		t.Errorf("host after more syscalls: %+v", host.Seccomp)
	}
	if len(src.forgot) != 1 {
		t.Errorf("forgot %v: retired twice", src.forgot)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
