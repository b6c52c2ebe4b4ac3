package tracer

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/sensor"
)

// BenchmarkSyscallOverhead (make bench) measures what syscall hooks cost a
// getppid loop, in one process run: no hooks, the floor (empty tp_btf
// sys_enter/sys_exit programs: enabling the hooks alone forces the slow path),
// the floor plus each piece of the latency sensor's work alone (where the cost
// goes), and the sensor in several configurations. Configurations are
// interleaved over rounds and medians reported, because this machine is noisy.
// It prints a table; it asserts nothing about time.
func BenchmarkSyscallOverhead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		b.Fatal(err)
	}
	const (
		rounds = 15
		calls  = 200_000
	)
	def := uint32(sensor.DefaultSyscallSampleEvery)
	configs := []struct {
		name  string
		setup func() (func(), error)
	}{
		{"no hooks", func() (func(), error) { return func() {}, nil }},
		{"floor (empty tp_btf)", attachFloor(partEmpty)},
		{"floor + 2 ktime_get_ns", attachFloor(partClock)},
		{"floor + 2 jiffies64 (no clocksource)", attachFloor(partJiffies)},
		{"floor + task storage", attachFloor(partStorage)},
		{"floor + histogram lookup", attachFloor(partHist)},
		{fmt.Sprintf("latency default (1/%d timed)", def), latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: def})},
		{"latency 1/8 timed", latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: 8})},
		{"latency all timed, tp_btf", latencyConfig(ModeTPBTF, LatencyOptions{})},
		{"latency all timed, raw_tracepoint", latencyConfig(ModeRawTP, LatencyOptions{})},
		{"latency all timed + per-syscall", latencyConfig(ModeTPBTF, LatencyOptions{PerSyscall: true})},
		{"latency default, containers-only (host loop)", latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: def, ContainersOnly: true})},
		{"latency default + rename, sem tracepoint", riders(ModeTracepoint, LatencyOptions{SampleEvery: def})},
		{"latency default + rename, sem tail_call", riders(ModeTailCall, LatencyOptions{SampleEvery: def})},
		{"every sensor, daemon defaults", allSensors(LatencyOptions{SampleEvery: def})},
	}
	const defaultRow = 6
	ns := make([][]float64, len(configs))
	for r := 0; r < rounds; r++ {
		for i, c := range configs {
			detach, err := c.setup()
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			ns[i] = append(ns[i], getppidLoop(calls))
			detach()
		}
	}
	med := make([]float64, len(configs))
	for i := range configs {
		slices.Sort(ns[i])
		med[i] = ns[i][len(ns[i])/2]
	}
	base, floor := med[0], med[1]-med[0]
	var out strings.Builder
	fmt.Fprintf(&out, "\ngetppid loop, %d calls x %d interleaved rounds, medians (kernel %s, %d CPUs)\n", calls, rounds, kernelRelease(), runtime.NumCPU())
	fmt.Fprintf(&out, "%-46s %10s %10s %14s\n", "configuration", "ns/call", "added ns", "added / floor")
	for i, c := range configs {
		added := med[i] - base
		ratio := "-"
		if i > 0 && floor > 0 {
			ratio = fmt.Sprintf("%.2fx", added/floor)
		}
		fmt.Fprintf(&out, "%-46s %10.0f %10.0f %14s\n", c.name, med[i], added, ratio)
		b.ReportMetric(med[i], strings.NewReplacer(" ", "_", "(", "", ")", "", ",", "", "/", "of").Replace(c.name)+"-ns/call")
	}
	if floor > 0 {
		fmt.Fprintf(&out, "budget: the default's added cost at most 1.5x the floor's; this run: %.2fx\n", (med[defaultRow]-base)/floor)
	}
	fmt.Print(out.String())
}

// getppidLoop returns the mean ns per getppid on one locked thread, in the
// thread's own CPU time: time other processes take from this CPU is not
// counted, which matters on a shared 2-core machine.
func getppidLoop(n int) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	for i := 0; i < n; i++ {
		unix.Getppid()
	}
	return float64(threadCPUTime()-start) / float64(n)
}

func threadCPUTime() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err) // exists since Linux 2.6.12
	}
	return ts.Nano()
}

// The parts of bpf/floor.bpf.c (enum part).
const (
	partEmpty uint32 = iota
	partClock
	partJiffies
	partStorage
	partHist
)

// attachFloor attaches the bench-only syscall hooks doing one part of the
// latency sensor's work (partEmpty: none, the floor).
func attachFloor(part uint32) func() (func(), error) {
	return func() (func(), error) {
		spec, err := loadFloor()
		if err != nil {
			return nil, err
		}
		if err := spec.Variables["part"].Set(part); err != nil {
			return nil, err
		}
		var objs floorObjects
		if err := spec.LoadAndAssign(&objs, nil); err != nil {
			return nil, err
		}
		progs := []*ebpf.Program{objs.FloorEnter, objs.FloorExit}
		var links []link.Link
		for _, p := range progs {
			l, err := link.AttachTracing(link.TracingOptions{Program: p})
			if err != nil {
				objs.Close()
				return nil, err
			}
			links = append(links, l)
		}
		return func() {
			for _, l := range links {
				l.Close()
			}
			objs.Close()
		}, nil
	}
}

func latencyConfig(mode Mode, lo LatencyOptions) func() (func(), error) {
	return func() (func(), error) {
		tr, err := New(Options{Sensors: []string{SensorLatency}, Attach: map[string]Mode{SensorLatency: mode}, Latency: lo, Logger: quietLogger()})
		if err != nil {
			return nil, err
		}
		if err := tr.Start(context.Background()); err != nil {
			return nil, err
		}
		return func() { tr.Close() }, nil
	}
}

// riders starts the latency sensor (tp_btf) with the rename and sem sensors
// forced into mode: tracepoint adds the kernel's perf syscall probes to the
// sys_enter/sys_exit tracepoints latency uses, tail_call rides on latency's.
func riders(mode Mode, lo LatencyOptions) func() (func(), error) {
	return func() (func(), error) {
		tr, err := New(Options{
			Sensors: []string{SensorLatency, SensorRename, SensorSem},
			Attach:  map[string]Mode{SensorLatency: ModeTPBTF, SensorRename: mode, SensorSem: mode},
			Latency: lo, Logger: quietLogger(), RetryInterval: -1,
		})
		if err != nil {
			return nil, err
		}
		if err := tr.Start(context.Background()); err != nil {
			return nil, err
		}
		for _, st := range tr.Status() {
			if st.Mode == "" {
				tr.Close()
				return nil, fmt.Errorf("%s: %s", st.Name, st.Unavailable)
			}
		}
		go func() {
			for range tr.Events() {
			}
		}()
		return func() { tr.Close() }, nil
	}
}

// allSensors starts the tracer as the daemon does by default: every sensor,
// best modes, its events drained.
func allSensors(lo LatencyOptions) func() (func(), error) {
	return func() (func(), error) {
		tr, err := New(Options{Latency: lo, Logger: quietLogger()})
		if err != nil {
			return nil, err
		}
		if err := tr.Start(context.Background()); err != nil {
			return nil, err
		}
		go func() {
			for range tr.Events() {
			}
		}()
		return func() { tr.Close() }, nil
	}
}
