// Package latency turns the kernel's syscall latency and seccomp filter-time
// histograms into per-container metrics, a /status summary, the /latency JSON
// document and the `observer seccomp-report` table. It reads the kernel on
// demand (scrape, request) through Source; nothing here runs per syscall.
package latency

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/sensor"
)

// Source is the tracer's on-demand side (tracer.Tracer).
type Source interface {
	SyscallLatency() (sensor.LatencySnapshot, error)
	SeccompFilterTime() (sensor.SeccompSnapshot, error)
	ForgetCgroups(ids []uint64)
	TrackCgroups(want map[uint64]bool) error
	// MeasuredCgroups lists the cgroups the kernel holds figures for (keys only).
	MeasuredCgroups() []uint64
}

// Resolver maps cgroups to containers (container.Resolver).
type Resolver interface {
	Lookup(cgroupID uint64) container.Container
	ContainerCgroups() map[uint64]string
	// Removed reports whether a cgroup is known to be gone.
	Removed(cgroupID uint64) bool
}

// DefaultTopN is how many syscalls per container /status and the opt-in
// metric label show.
const DefaultTopN = 5

// Options configure a Latency.
type Options struct {
	Source   Source
	Resolver Resolver
	// Label maps a container id to its bounded metric label (metrics.Metrics.ContainerLabel).
	Label func(id string) string
	// TopN bounds the per-syscall breakdown per container; 0 means DefaultTopN.
	TopN int
	// SyscallLabel adds the per-syscall metrics (top N per container).
	SyscallLabel bool
	// ContainersOnly keeps the kernel's tracked set equal to the resolver's container cgroups.
	ContainersOnly bool
	Logger         *slog.Logger
}

// Latency owns the user side of the latency and seccomp sensors.
type Latency struct {
	opts Options

	mu sync.Mutex
	// seen remembers which cgroups each container had, so that their kernel
	// entries can be deleted when the container is gone: by then the resolver
	// no longer maps those cgroups.
	seen map[string]map[uint64]bool

	// kernelMu orders reports (read) against retiring host cgroups (write),
	// so that no report sees a cgroup's figures both in the kernel and in
	// retired, or in neither.
	kernelMu sync.RWMutex
	// retired holds the figures of host cgroups that are gone. Their kernel
	// entries are deleted, or transient host cgroups (sessions, cron jobs,
	// systemd units) would fill the bounded maps; but the host's series sum
	// every host cgroup, and as counters they must not go down.
	retired         ContainerReport
	retiredSyscalls map[uint32]*SyscallStat
}

// New checks the options.
func New(opts Options) *Latency {
	if opts.TopN <= 0 {
		opts.TopN = DefaultTopN
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Label == nil {
		opts.Label = func(id string) string { return container.ShortID(id) }
	}
	return &Latency{opts: opts, seen: map[string]map[uint64]bool{}, retiredSyscalls: map[uint32]*SyscallStat{}}
}

// refreshPeriod is how often measured cgroups are mapped to containers between
// scrapes (a container that lives and dies between scrapes must still be
// cleaned up: once gone, the resolver no longer maps its cgroups) and, in
// containers-only mode, how soon a new container is measured.
const refreshPeriod = time.Second

// Run keeps the cgroup bookkeeping fresh until ctx ends.
func (l *Latency) Run(ctx context.Context) {
	t := time.NewTicker(refreshPeriod)
	defer t.Stop()
	for {
		l.refresh()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh syncs the containers-only set, remembers which cgroups each
// container has, and retires host cgroups that are gone.
func (l *Latency) refresh() {
	if l.opts.ContainersOnly {
		want := map[uint64]bool{}
		for id := range l.opts.Resolver.ContainerCgroups() {
			want[id] = true
		}
		if err := l.opts.Source.TrackCgroups(want); err != nil && !errors.Is(err, sensor.ErrNotRunning) {
			l.opts.Logger.Warn("latency: track container cgroups", "err", err)
		}
	}
	var goneHost []uint64
	for _, cg := range l.opts.Source.MeasuredCgroups() {
		if c := l.opts.Resolver.Lookup(cg); c.ID != "" {
			l.remember(c.ID, cg)
		} else if l.opts.Resolver.Removed(cg) {
			goneHost = append(goneHost, cg)
		}
	}
	l.retireHost(goneHost)
}

// retireHost moves the figures of gone host cgroups from the kernel to retired.
func (l *Latency) retireHost(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	gone := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	l.kernelMu.Lock()
	defer l.kernelMu.Unlock()
	// A removed cgroup has no tasks left: nothing adds to its entries between
	// this read and the delete.
	snap, latErr := l.opts.Source.SyscallLatency()
	fsnap, filtErr := l.opts.Source.SeccompFilterTime()
	addFigures(snap, latErr, fsnap, filtErr, func(cg uint64) (*ContainerReport, map[uint32]*SyscallStat) {
		if gone[cg] {
			return &l.retired, l.retiredSyscalls
		}
		return nil, nil
	})
	l.retired.Filter = clearFilters(l.retired.Filter)
	l.opts.Source.ForgetCgroups(ids)
}

// clearFilters drops the filter count of retired figures: it is a gauge of the
// most recently seen task, which a gone cgroup no longer has.
func clearFilters(f *FilterTime) *FilterTime {
	if f != nil {
		f.Filters = 0
	}
	return f
}

// Forget deletes the kernel entries of a container that is gone (Resolver.Gone).
func (l *Latency) Forget(id string) {
	l.mu.Lock()
	cgs := l.seen[id]
	delete(l.seen, id)
	l.mu.Unlock()
	ids := make([]uint64, 0, len(cgs))
	for cg := range cgs {
		ids = append(ids, cg)
	}
	l.opts.Source.ForgetCgroups(ids)
}

// Report is the /latency document: cumulative counts since the sensor
// started (or since the container's first syscall), per container.
type Report struct {
	Time time.Time `json:"time"`
	// SampleEvery: one syscall (and one seccomp filter run) in N was timed;
	// histograms and per-syscall figures below are scaled up by N
	// (estimates), calls are exact.
	SampleEvery uint32 `json:"sample_every"`
	// LatencyError / FilterError say why a sensor's figures are missing.
	LatencyError string            `json:"latency_error,omitempty"`
	FilterError  string            `json:"filter_error,omitempty"`
	Containers   []ContainerReport `json:"containers"`
	// Untracked counts syscalls and filter runs the kernel did not record, by reason.
	Untracked map[string]uint64 `json:"untracked,omitempty"`
}

// ContainerReport is one container (ID "" = every host cgroup together).
type ContainerReport struct {
	ID      string        `json:"id"`
	Name    string        `json:"name,omitempty"`
	Seccomp []ModeLatency `json:"seccomp"`
	// Filter is the seccomp filter evaluation time; nil when not measured.
	Filter      *FilterTime   `json:"filter,omitempty"`
	TopSyscalls []SyscallStat `json:"top_syscalls,omitempty"`
}

// ModeLatency is the syscall duration histogram of a container's tasks in one
// seccomp mode. Calls is exact; Hist is estimated when sampling.
type ModeLatency struct {
	Mode  string               `json:"mode"`
	Calls uint64               `json:"calls"`
	Hist  sensor.Log2Histogram `json:"hist"`
}

// FilterTime is a container's seccomp filter evaluation time.
type FilterTime struct {
	Filters uint64               `json:"filters"`
	Hist    sensor.Log2Histogram `json:"hist"`
}

// SyscallStat is one syscall's share of a container's syscalls.
type SyscallStat struct {
	Name  string `json:"name"`
	Nr    uint32 `json:"nr"`
	Count uint64 `json:"count"`
	SumNs uint64 `json:"sum_ns"`
}

// Report reads the kernel and groups its figures by container.
func (l *Latency) Report() Report {
	rep := Report{Time: time.Now().UTC(), SampleEvery: 1}
	byID := map[string]*ContainerReport{}
	perCtr := map[*ContainerReport]map[uint32]*SyscallStat{}
	group := func(id, name string) (*ContainerReport, map[uint32]*SyscallStat) {
		r := byID[id]
		if r == nil {
			r = &ContainerReport{ID: id, Name: name}
			byID[id] = r
			perCtr[r] = map[uint32]*SyscallStat{}
		}
		return r, perCtr[r]
	}
	l.kernelMu.RLock()
	snap, latErr := l.opts.Source.SyscallLatency()
	fsnap, filtErr := l.opts.Source.SeccompFilterTime()
	addFigures(snap, latErr, fsnap, filtErr, func(cg uint64) (*ContainerReport, map[uint32]*SyscallStat) {
		c := l.opts.Resolver.Lookup(cg)
		if c.ID != "" {
			l.remember(c.ID, cg)
		}
		return group(c.ID, c.Name)
	})
	if len(l.retired.Seccomp) > 0 || l.retired.Filter != nil {
		host, calls := group("", "")
		addReport(host, calls, &l.retired, l.retiredSyscalls)
	}
	l.kernelMu.RUnlock()

	if latErr != nil {
		rep.LatencyError = latErr.Error()
	} else {
		rep.SampleEvery = max(snap.SampleEvery, 1)
		// Zeros too: a counter that exists from the start is one alerts can use.
		rep.Untracked = map[string]uint64{
			"histogram_full": snap.HistOverflow, "per_syscall_full": snap.SyscallOverflow, "thread_storage": snap.StorageOverflow,
		}
	}
	if filtErr != nil {
		rep.FilterError = filtErr.Error()
	} else {
		if rep.Untracked == nil {
			rep.Untracked = map[string]uint64{}
		}
		for reason, n := range map[string]uint64{
			"filter_histogram_full": fsnap.HistOverflow, "filter_thread_storage": fsnap.StorageOverflow,
			"filter_unmatched": fsnap.Unmatched, "filter_slept": fsnap.Slept,
		} {
			rep.Untracked[reason] = n
		}
	}
	for r, calls := range perCtr {
		r.TopSyscalls = topN(calls, l.opts.TopN)
		slices.SortFunc(r.Seccomp, func(a, b ModeLatency) int { return cmp.Compare(a.Mode, b.Mode) })
		rep.Containers = append(rep.Containers, *r)
	}
	slices.SortFunc(rep.Containers, func(a, b ContainerReport) int { return cmp.Compare(a.ID, b.ID) })
	return rep
}

// addFigures adds the kernel's figures to the groups that group picks per
// cgroup (nil: skip the cgroup). Sampled figures are scaled up to estimates.
func addFigures(snap sensor.LatencySnapshot, latErr error, fsnap sensor.SeccompSnapshot, filtErr error,
	group func(cgroup uint64) (*ContainerReport, map[uint32]*SyscallStat)) {
	if latErr == nil {
		every := uint64(max(snap.SampleEvery, 1))
		for _, s := range snap.Latency {
			r, _ := group(s.CgroupID)
			if r == nil {
				continue
			}
			h := s.Hist
			h.Scale(every)
			r.addMode(s.Seccomp, &h, s.Calls)
		}
		for _, s := range snap.Syscalls {
			_, calls := group(s.CgroupID)
			if calls == nil {
				continue
			}
			addSyscall(calls, SyscallStat{Nr: s.Nr, Count: s.Count * every, SumNs: s.SumNs * every})
		}
	}
	if filtErr == nil {
		every := uint64(max(fsnap.SampleEvery, 1))
		for _, f := range fsnap.Filter {
			r, _ := group(f.CgroupID)
			if r == nil {
				continue
			}
			h := f.Hist
			h.Scale(every)
			r.addFilter(&h, f.Filters)
		}
	}
}

// addReport adds src's figures (already scaled) to dst.
func addReport(dst *ContainerReport, dstCalls map[uint32]*SyscallStat, src *ContainerReport, srcCalls map[uint32]*SyscallStat) {
	for _, m := range src.Seccomp {
		dst.addMode(m.Mode, &m.Hist, m.Calls)
	}
	if src.Filter != nil {
		dst.addFilter(&src.Filter.Hist, src.Filter.Filters)
	}
	for _, s := range srcCalls {
		addSyscall(dstCalls, *s)
	}
}

// mode returns r's figures for one seccomp mode, added if missing.
func (r *ContainerReport) mode(name string) *ModeLatency {
	i := slices.IndexFunc(r.Seccomp, func(m ModeLatency) bool { return m.Mode == name })
	if i < 0 {
		r.Seccomp = append(r.Seccomp, ModeLatency{Mode: name})
		i = len(r.Seccomp) - 1
	}
	return &r.Seccomp[i]
}

func (r *ContainerReport) addMode(name string, h *sensor.Log2Histogram, calls uint64) {
	m := r.mode(name)
	m.Hist.Add(h)
	m.Calls += calls
}

func (r *ContainerReport) addFilter(h *sensor.Log2Histogram, filters uint64) {
	if r.Filter == nil {
		r.Filter = &FilterTime{}
	}
	r.Filter.Hist.Add(h)
	r.Filter.Filters = max(r.Filter.Filters, filters)
}

func addSyscall(calls map[uint32]*SyscallStat, s SyscallStat) {
	st := calls[s.Nr]
	if st == nil {
		st = &SyscallStat{Name: SyscallName(s.Nr), Nr: s.Nr}
		calls[s.Nr] = st
	}
	st.Count += s.Count
	st.SumNs += s.SumNs
}

func (l *Latency) remember(id string, cgroup uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.seen[id]
	if m == nil {
		m = map[uint64]bool{}
		l.seen[id] = m
	}
	m[cgroup] = true
}

// topN keeps the n syscalls with the most time spent (ties: more calls, lower number).
func topN(m map[uint32]*SyscallStat, n int) []SyscallStat {
	out := make([]SyscallStat, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b SyscallStat) int {
		if c := cmp.Compare(b.SumNs, a.SumNs); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Nr, b.Nr)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
