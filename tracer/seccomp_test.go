package tracer

import (
	"testing"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/testenv"
)

// TestSeccompFilterTime stacks 1 and then 10 identical filters on a helper
// thread and checks the filter-time histogram of each helper's cgroup: every
// getppid ran the filters, the filter count is exact, and ten filters cost
// more than one, and no filter run went unrecorded. This host refuses fentry and has no kprobes, so it runs in the
// QEMU kernel matrix (make vmtest).
func TestSeccompFilterTime(t *testing.T) {
	requireRoot(t)
	const (
		calls = 5000
		insns = 200 // per filter: the work grows with the number of filters
	)
	for _, c := range threadStateCases(ModeFentry, ModeKprobe) {
		mode := c.mode
		t.Run(c.name, func(t *testing.T) {
			tr := startSensor(t, SensorSeccomp, mode, Options{Latency: LatencyOptions{ForceTIDMap: c.forceTID}})
			if tr == nil {
				return
			}
			checkThreadState(t, tr, SensorSeccomp, c.forceTID)
			one := runHelper(t, calls, 0, 1, insns)
			ten := runHelper(t, calls, 0, 10, insns)
			snap, err := tr.SeccompFilterTime()
			if err != nil {
				t.Fatal(err)
			}
			got := map[uint64]sensor.SeccompFilterTime{}
			for _, f := range snap.Filter {
				got[f.CgroupID] = f
			}
			// Single-threaded helpers, no notifier or tracer, nothing else
			// filtered in the guest: every filter run is matched and recorded.
			if snap.HistOverflow+snap.StorageOverflow+snap.Unmatched+snap.Slept != 0 {
				t.Errorf("filter runs not recorded: hist full %d, storage %d, unmatched %d, slept %d",
					snap.HistOverflow, snap.StorageOverflow, snap.Unmatched, snap.Slept)
			}
			mean := map[int]float64{}
			for _, c := range []struct {
				filters int
				cgroup  uint64
			}{{1, one}, {10, ten}} {
				f, ok := got[c.cgroup]
				if !ok {
					t.Fatalf("%d filters: no histogram for the helper's cgroup", c.filters)
				}
				if f.Filters != uint64(c.filters) {
					t.Errorf("%d filters: sensor counted %d", c.filters, f.Filters)
				}
				// One sample per filtered syscall: the getppid loop plus the
				// helper runtime's own few syscalls after the filters went on.
				if n := f.Hist.Count(); n < calls {
					t.Errorf("%d filters: %d filter runs, want >= %d (one per getppid)", c.filters, n, calls)
				}
				t.Logf("%s, %d filters: %d filter runs recorded for %d getppid calls", mode, c.filters, f.Hist.Count(), calls)
				mean[c.filters] = float64(f.Hist.SumNs) / float64(f.Hist.Count())
			}
			t.Logf("%s: mean filter time %.0f ns with 1 filter, %.0f ns with 10 (%.1fx)", mode, mean[1], mean[10], mean[10]/mean[1])
			testenv.Result(t, map[string]any{
				"test": "seccomp_filter_time", "mode": string(mode), "insns_per_filter": insns,
				"mean_ns_1_filter": int(mean[1]), "mean_ns_10_filters": int(mean[10]),
			})
			// Ten times the filter work; even a noisy emulated guest keeps the order.
			if mean[10] <= mean[1] {
				t.Errorf("10 filters took %.0f ns per syscall, 1 filter %.0f ns: want growth", mean[10], mean[1])
			}
		})
	}
}

// TestSeccompFilterTimeSampled: timing one filter run in ten, about a tenth
// of the runs are recorded, and the untimed exits are not mistaken for exits
// without an entry. QEMU only, like TestSeccompFilterTime.
func TestSeccompFilterTimeSampled(t *testing.T) {
	requireRoot(t)
	const (
		calls = 5000
		every = 10
	)
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSeccomp, mode, Options{Latency: LatencyOptions{SampleEvery: every}})
			if tr == nil {
				return
			}
			cg := runHelper(t, calls, 0, 1, 10)
			snap, err := tr.SeccompFilterTime()
			if err != nil {
				t.Fatal(err)
			}
			if snap.SampleEvery != every {
				t.Errorf("SampleEvery = %d, want %d", snap.SampleEvery, every)
			}
			if snap.Unmatched+snap.StorageOverflow+snap.HistOverflow != 0 {
				t.Errorf("untimed runs miscounted: unmatched %d, storage %d, hist full %d", snap.Unmatched, snap.StorageOverflow, snap.HistOverflow)
			}
			var f *sensor.SeccompFilterTime
			for i := range snap.Filter {
				if snap.Filter[i].CgroupID == cg {
					f = &snap.Filter[i]
				}
			}
			if f == nil {
				t.Fatal("no histogram for the helper's cgroup")
			}
			// 5000 getppid and a few runtime calls, one in ten timed: about 500.
			t.Logf("%s: %d of about %d filter runs timed", mode, f.Hist.Count(), calls)
			if n := f.Hist.Count(); n < 300 || n > 900 {
				t.Errorf("%d filter runs timed, want about %d", n, calls/every)
			}
			if f.Filters != 1 {
				t.Errorf("filters = %d, want 1", f.Filters)
			}
		})
	}
}
