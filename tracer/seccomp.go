package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/observer-dev/observer/internal/sensor"
)

// The seccomp sensor: time spent in seccomp filters, aggregated in the kernel
// (bpf/seccomp.bpf.c); no events, read on scrape. It shares LatencyOptions
// and the histogram code with the latency sensor (latency.go).
var seccompSensor = sensorDef{
	name:      SensorSeccomp,
	load:      loadSeccomp,
	modes:     []Mode{ModeFentry, ModeKprobe},
	configure: configureSeccomp,
	variant: func(spec *ebpf.CollectionSpec, _ Mode, opts *Options) (string, error) {
		return threadStateVariant(spec, seccompMapFilterStart, opts.Latency.ForceTIDMap, "seccomp_thread_exit")
	},
}

func configureSeccomp(spec *ebpf.CollectionSpec, opts *Options) error {
	lo := &opts.Latency
	for name, v := range map[string]any{seccompVarSampleEvery: lo.sampleEvery(), seccompVarSampleBelow: lo.sampleBelow()} {
		if err := setVariable(spec, name, v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return lo.sizeHistMap(spec, seccompMapFilterHist)
}

// SeccompFilterTime reads the seccomp sensor's histograms, summed over CPUs.
func (t *Tracer) SeccompFilterTime() (sensor.SeccompSnapshot, error) {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	snap := sensor.SeccompSnapshot{SampleEvery: t.opts.Latency.sampleEvery()}
	maps, err := t.sensorMaps(SensorSeccomp)
	if err != nil {
		return snap, err
	}
	var cgroup uint64
	var perCPU []seccompHist
	it := maps[seccompMapFilterHist].Iterate()
	for it.Next(&cgroup, &perCPU) {
		f := sensor.SeccompFilterTime{CgroupID: cgroup}
		for _, h := range perCPU {
			for i, b := range h.Buckets {
				f.Hist.Buckets[i] += b
			}
			f.Hist.SumNs += h.SumNs
			f.Filters = max(f.Filters, h.Aux)
		}
		snap.Filter = append(snap.Filter, f)
	}
	if err := it.Err(); err != nil {
		return snap, fmt.Errorf("read seccomp histograms: %w", err)
	}
	over := overflowCounts(maps[latencyMapOverflow])
	snap.HistOverflow = over[seccompOverflowReasonOVERFLOW_HIST_FULL]
	snap.StorageOverflow = over[seccompOverflowReasonOVERFLOW_STORAGE]
	snap.Unmatched = over[seccompOverflowReasonOVERFLOW_FILTER_UNMATCHED]
	snap.Slept = over[seccompOverflowReasonOVERFLOW_FILTER_SLEPT]
	return snap, nil
}
