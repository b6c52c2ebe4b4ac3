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
)

// BenchmarkSyscallOverhead (make bench) measures what syscall hooks cost a
// getppid loop, in one process run: no hooks, the floor (empty tp_btf
// sys_enter/sys_exit programs: enabling the hooks alone forces the slow path),
// and the latency sensor in several configurations. Configurations are
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
	configs := []struct {
		name  string
		setup func() (func(), error)
	}{
		{"no hooks", func() (func(), error) { return func() {}, nil }},
		{"floor (empty tp_btf)", attachFloor(false)},
		{"floor + clock reads", attachFloor(true)},
		{"latency tp_btf", latencyConfig(ModeTPBTF, LatencyOptions{})},
		{"latency raw_tracepoint", latencyConfig(ModeRawTP, LatencyOptions{})},
		{"latency + per-syscall", latencyConfig(ModeTPBTF, LatencyOptions{PerSyscall: true})},
		{"latency sampled 1/16", latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: 16})},
		{"latency containers-only, host loop", latencyConfig(ModeTPBTF, LatencyOptions{ContainersOnly: true})},
	}
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
	fmt.Fprintf(&out, "%-36s %10s %10s %14s\n", "configuration", "ns/call", "added ns", "added / floor")
	for i, c := range configs {
		added := med[i] - base
		ratio := "-"
		if i > 0 && floor > 0 {
			ratio = fmt.Sprintf("%.2fx", added/floor)
		}
		fmt.Fprintf(&out, "%-36s %10.0f %10.0f %14s\n", c.name, med[i], added, ratio)
		b.ReportMetric(med[i], strings.NewReplacer(" ", "_", "(", "", ")", "", ",", "", "/", "of").Replace(c.name)+"-ns/call")
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

// attachFloor attaches the bench-only empty programs, or with clock the ones
// that only read the clock at each end.
func attachFloor(clock bool) func() (func(), error) {
	return func() (func(), error) {
		var objs floorObjects
		if err := loadFloorObjects(&objs, nil); err != nil {
			return nil, err
		}
		progs := []*ebpf.Program{objs.FloorEnter, objs.FloorExit}
		if clock {
			progs = []*ebpf.Program{objs.ClockEnter, objs.ClockExit}
		}
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
