package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/observer-dev/observer/internal/sensor"
)

// LatencyOptions configure the latency and seccomp sensors.
type LatencyOptions struct {
	// SampleEvery times one syscall in N on average: each sys_enter is
	// picked at random with probability 1/N, independently of the thread.
	// 0 or 1 times every syscall. Every syscall is counted either way. The
	// seccomp sensor times one filter run in N the same way.
	SampleEvery uint32
	// ContainersOnly skips every cgroup not passed to TrackCgroups.
	ContainersOnly bool
	// PerSyscall also counts calls and time per {cgroup, syscall number}.
	PerSyscall bool
	// ForceTIDMap keeps per-thread state in the hash by thread id even where
	// task storage works (tests and benchmarks compare the two on one kernel).
	ForceTIDMap bool
	// MaxCgroups bounds the histogram maps (cgroups x seccomp modes for the
	// latency sensor); 0 sizes them from histMapBudget.
	MaxCgroups int
}

// Bounds of the histogram maps when MaxCgroups is 0. A per-CPU hash
// preallocates max_entries values on every possible CPU: 4096 entries of a
// 336-byte histogram are 1.3 MiB per CPU, 88 MiB per map at 64 CPUs. So each
// map gets at most histMapBudget: entries = budget / (value size x possible
// CPUs), clamped to [minHistEntries, maxHistEntries] (4096 up to 12 CPUs, 780
// at 64, 256 from 196 CPUs, where the floor exceeds the budget). A busy host
// has a few hundred cgroups making syscalls, most in a single seccomp mode;
// cgroups that do not fit are counted as overflow.
const (
	histMapBudget  = 16 << 20
	minHistEntries = 256
	maxHistEntries = 4096
)

// maxTracked bounds the containers-only set (the `tracked` map).
const maxTracked = 4096

func (o *LatencyOptions) validate() error {
	if o.MaxCgroups < 0 || o.MaxCgroups > 1<<20 {
		return fmt.Errorf("latency: max cgroups %d out of range (0..%d)", o.MaxCgroups, 1<<20)
	}
	return nil
}

// histEntries sizes a histogram map: MaxCgroups when set, else what the
// memory budget allows for this value size on this many CPUs.
func (o *LatencyOptions) histEntries(valueSize uint32, cpus int) uint32 {
	if o.MaxCgroups != 0 {
		return uint32(o.MaxCgroups)
	}
	perCPU := (int(valueSize) + 7) &^ 7 // the kernel rounds per-CPU values up to 8 bytes
	n := histMapBudget / (perCPU * max(cpus, 1))
	return uint32(min(max(n, minHistEntries), maxHistEntries))
}

// sizeHistMap applies histEntries to one of the spec's per-CPU histogram maps.
func (o *LatencyOptions) sizeHistMap(spec *ebpf.CollectionSpec, name string) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("size %s: %w", name, err)
	}
	m := spec.Maps[name]
	m.MaxEntries = o.histEntries(m.ValueSize, cpus)
	return nil
}

func (o *LatencyOptions) sampleEvery() uint32 { return max(o.SampleEvery, 1) }

// sampleBelow is the kernel's sampling threshold: a syscall is timed when a
// random u32 is below it, with probability 1/N.
func (o *LatencyOptions) sampleBelow() uint32 {
	return uint32((uint64(1) << 32) / uint64(o.sampleEvery()))
}

// The latency sensor: syscall durations, aggregated in the kernel
// (bpf/latency.bpf.c); no events, read on scrape. Its tp_btf programs carry
// the other sensors' tail_call mode (tailcall.go).
var latencySensor = sensorDef{
	name:      SensorLatency,
	load:      loadLatency,
	modes:     []Mode{ModeTPBTF, ModeRawTP},
	configure: configureLatency,
	variant: func(spec *ebpf.CollectionSpec, _ Mode, opts *Options) (string, error) {
		return threadStateVariant(spec, latencyMapStarts, opts.Latency.ForceTIDMap, "")
	},
}

func configureLatency(spec *ebpf.CollectionSpec, opts *Options) error {
	lo := &opts.Latency
	for name, v := range map[string]any{
		latencyVarSampleEvery:    lo.sampleEvery(),
		latencyVarSampleBelow:    lo.sampleBelow(),
		latencyVarContainersOnly: lo.ContainersOnly,
		latencyVarPerSyscall:     lo.PerSyscall,
	} {
		if err := setVariable(spec, name, v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	if err := lo.sizeHistMap(spec, latencyMapLatencyHist); err != nil {
		return err
	}
	spec.Maps[latencyMapTracked].MaxEntries = maxTracked
	if !lo.PerSyscall {
		spec.Maps[latencyMapSyscallStats].MaxEntries = 1 // never written
	}
	return nil
}

// seccompModes names task->seccomp.mode (include/linux/seccomp.h).
var seccompModes = [...]string{"none", "strict", "filter", "dead"}

// ErrNotRunning is returned by the on-demand readers when their sensor is not attached.
var ErrNotRunning = sensor.ErrNotRunning

// sensorMaps returns a running sensor's maps; callers hold t.mapsMu.RLock
// while they use them.
func (t *Tracer) sensorMaps(name string) (map[string]*ebpf.Map, error) {
	if t.mapsClosed || t.closed.Load() {
		return nil, ErrNotRunning
	}
	for _, r := range t.running {
		if r.def.name == name {
			return r.att.coll.Maps, nil
		}
	}
	for _, st := range t.status {
		if st.Name == name {
			return nil, fmt.Errorf("%w: %s sensor unavailable: %s", ErrNotRunning, name, st.Unavailable)
		}
	}
	return nil, fmt.Errorf("%w: %s sensor not enabled (--sensors)", ErrNotRunning, name)
}

// SyscallLatency reads the latency sensor's histograms, summed over CPUs.
func (t *Tracer) SyscallLatency() (sensor.LatencySnapshot, error) {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	snap := sensor.LatencySnapshot{SampleEvery: t.opts.Latency.sampleEvery()}
	maps, err := t.sensorMaps(SensorLatency)
	if err != nil {
		return snap, err
	}
	var key latencyHistKey
	var perCPU []latencyHist
	it := maps[latencyMapLatencyHist].Iterate()
	for it.Next(&key, &perCPU) {
		l := sensor.SyscallLatency{CgroupID: key.CgroupId, Seccomp: name(seccompModes[:], int(key.Mode))}
		for _, h := range perCPU {
			for i, b := range h.Buckets {
				l.Hist.Buckets[i] += b
			}
			l.Hist.SumNs += h.SumNs
			l.Calls += h.Aux // every syscall, timed or not
		}
		snap.Latency = append(snap.Latency, l)
	}
	if err := it.Err(); err != nil {
		return snap, fmt.Errorf("read latency histograms: %w", err)
	}
	if t.opts.Latency.PerSyscall {
		var sk latencySyscallKey
		var stats []latencySyscallStat
		it := maps[latencyMapSyscallStats].Iterate()
		for it.Next(&sk, &stats) {
			s := sensor.SyscallStat{CgroupID: sk.CgroupId, Nr: sk.Nr}
			for _, c := range stats {
				s.Count += c.Count
				s.SumNs += c.SumNs
			}
			snap.Syscalls = append(snap.Syscalls, s)
		}
		if err := it.Err(); err != nil {
			return snap, fmt.Errorf("read per-syscall counts: %w", err)
		}
	}
	over := overflowCounts(maps[latencyMapOverflow])
	snap.HistOverflow = over[latencyOverflowReasonOVERFLOW_HIST_FULL]
	snap.StorageOverflow = over[latencyOverflowReasonOVERFLOW_STORAGE]
	snap.SyscallOverflow = over[latencyOverflowReasonOVERFLOW_SYSCALL_FULL]
	return snap, nil
}

// overflowReasons is OVERFLOW_REASONS in bpf/overflow.h (enum overflow_reason).
const overflowReasons = int(latencyOverflowReasonOVERFLOW_REASONS)

func overflowCounts(m *ebpf.Map) [overflowReasons]uint64 {
	var out [overflowReasons]uint64
	for i := range out {
		var perCPU []uint64
		if m.Lookup(uint32(i), &perCPU) != nil {
			continue
		}
		for _, n := range perCPU {
			out[i] += n
		}
	}
	return out
}

// ForgetCgroups deletes every in-kernel aggregate of the given cgroups (all
// seccomp modes, every syscall), for cgroups that are gone: their slots go back
// to the bounded maps.
func (t *Tracer) ForgetCgroups(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	gone := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	if maps, err := t.sensorMaps(SensorLatency); err == nil {
		for _, id := range ids {
			for mode := range seccompModes {
				maps[latencyMapLatencyHist].Delete(latencyHistKey{CgroupId: id, Mode: uint32(mode)})
			}
			maps[latencyMapTracked].Delete(id)
		}
		if t.opts.Latency.PerSyscall {
			deleteWhere[latencySyscallKey](maps[latencyMapSyscallStats], func(k *latencySyscallKey) bool { return gone[k.CgroupId] })
		}
	}
	if maps, err := t.sensorMaps(SensorSeccomp); err == nil {
		for _, id := range ids {
			maps[seccompMapFilterHist].Delete(id)
		}
	}
}

// deleteWhere deletes the keys that match. It walks keys only: a per-CPU
// value is read for every CPU, which on a large host costs far more than the
// key. Keys are collected first because deleting while walking a hash map
// restarts the walk.
func deleteWhere[K any](m *ebpf.Map, match func(*K) bool) {
	for _, k := range mapKeys[K](m) {
		if match(&k) {
			m.Delete(k)
		}
	}
}

// TrackCgroups sets the cgroups the latency sensor measures when
// ContainersOnly is on: ids missing from want are dropped, new ones added. At
// most 4096 are tracked; the rest are reported in the error.
func (t *Tracer) TrackCgroups(want map[uint64]bool) error {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	maps, err := t.sensorMaps(SensorLatency)
	if err != nil {
		return err
	}
	m := maps[latencyMapTracked]
	var (
		id    uint64
		v     uint8
		have  = map[uint64]bool{}
		stale []uint64
	)
	it := m.Iterate()
	for it.Next(&id, &v) {
		have[id] = true
		if !want[id] {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		m.Delete(id)
	}
	var failed int
	for id := range want {
		if !have[id] {
			if m.Put(id, uint8(1)) != nil {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("latency: %d container cgroups not tracked (at most %d)", failed, maxTracked)
	}
	return nil
}

// MeasuredCgroups lists the cgroups with an in-kernel histogram, reading keys
// only (cheap on hosts with many CPUs, where each per-CPU value is large).
func (t *Tracer) MeasuredCgroups() []uint64 {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	seen := map[uint64]bool{}
	if maps, err := t.sensorMaps(SensorLatency); err == nil {
		for _, key := range mapKeys[latencyHistKey](maps[latencyMapLatencyHist]) {
			seen[key.CgroupId] = true
		}
	}
	if maps, err := t.sensorMaps(SensorSeccomp); err == nil {
		for _, id := range mapKeys[uint64](maps[seccompMapFilterHist]) {
			seen[id] = true
		}
	}
	out := make([]uint64, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	return out
}

// mapKeys walks a map's keys with NextKey, at most MaxEntries of them (a walk
// restarted by concurrent deletes cannot loop forever).
func mapKeys[K any](m *ebpf.Map) []K {
	var (
		out  []K
		next K
	)
	var prev any // nil: start from the first key
	for i := uint32(0); i < m.MaxEntries(); i++ {
		if err := m.NextKey(prev, &next); err != nil {
			break // ErrKeyNotExist at the end
		}
		out = append(out, next)
		k := next
		prev = &k
	}
	return out
}

// setVariable sets a constant the object declares; a name the object lacks is
// an error, never a nil dereference.
func setVariable(spec *ebpf.CollectionSpec, name string, v any) error {
	vs := spec.Variables[name]
	if vs == nil {
		return fmt.Errorf("BPF object has no variable %s", name)
	}
	return vs.Set(v)
}

// The histogram type the sensors emit is the one internal/sensor sums.
var _ [sensor.HistBuckets]uint64 = latencyHist{}.Buckets
var _ [latencyHistSizeHIST_BUCKETS]uint64 = latencyHist{}.Buckets
