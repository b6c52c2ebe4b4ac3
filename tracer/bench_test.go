package tracer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

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
	configs := []benchConfig{
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
	med := runInterleaved(b, configs, rounds, calls)
	printTable(b, fmt.Sprintf("getppid loop, %d calls x %d interleaved rounds, medians (kernel %s, %d CPUs)", calls, rounds, kernelRelease(), runtime.NumCPU()),
		configs, med, defaultRow)
}

// BenchmarkThreadState (make bench-vm) compares the latency sensor's two
// homes for per-thread state on one kernel, side by side: task storage and
// the hash by thread id that kernels without task storage (5.10) use. On such
// a kernel it skips: there is nothing to compare with.
func BenchmarkThreadState(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		b.Fatal(err)
	}
	if ok, err := haveTaskStorage(); err != nil || !ok {
		b.Skipf("no task storage here (%v): only the tid map runs", err)
	}
	const (
		rounds = 15
		calls  = 100_000
	)
	def := uint32(sensor.DefaultSyscallSampleEvery)
	configs := []benchConfig{
		{"no hooks", func() (func(), error) { return func() {}, nil }},
		{"floor (empty tp_btf)", attachFloor(partEmpty)},
		{fmt.Sprintf("latency default (1/%d), task storage", def), latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: def})},
		{fmt.Sprintf("latency default (1/%d), tid map", def), latencyConfig(ModeTPBTF, LatencyOptions{SampleEvery: def, ForceTIDMap: true})},
		{"latency all timed, task storage", latencyConfig(ModeTPBTF, LatencyOptions{})},
		{"latency all timed, tid map", latencyConfig(ModeTPBTF, LatencyOptions{ForceTIDMap: true})},
	}
	med := runInterleaved(b, configs, rounds, calls)
	printTable(b, fmt.Sprintf("getppid, latency sensor per-thread state, %d calls x %d interleaved rounds, medians (kernel %s, %d CPUs)", calls, rounds, kernelRelease(), runtime.NumCPU()),
		configs, med, -1)
}

type benchConfig struct {
	name  string
	setup func() (detach func(), err error)
}

// runInterleaved times the getppid loop under each configuration in turn,
// rounds times over, and returns each one's median ns per call.
func runInterleaved(b *testing.B, configs []benchConfig, rounds, calls int) []float64 {
	return runInterleavedWith(b, configs, rounds, func() float64 { return getppidLoop(calls) })
}

// runInterleavedWith is runInterleaved for any loop returning ns per call.
func runInterleavedWith(b *testing.B, configs []benchConfig, rounds int, loop func() float64) []float64 {
	ns := make([][]float64, len(configs))
	for r := 0; r < rounds; r++ {
		for i, c := range configs {
			detach, err := c.setup()
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			ns[i] = append(ns[i], loop())
			detach()
		}
	}
	med := make([]float64, len(configs))
	for i := range configs {
		slices.Sort(ns[i])
		med[i] = ns[i][len(ns[i])/2]
	}
	return med
}

// printTable prints each configuration's cost as added to the first row's
// and as a ratio to the second row's (the floor); budgetRow, when not -1,
// adds the budget line for that row.
func printTable(b *testing.B, title string, configs []benchConfig, med []float64, budgetRow int) {
	base, floor := med[0], med[1]-med[0]
	var out strings.Builder
	fmt.Fprintf(&out, "\n%s\n", title)
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
	if budgetRow >= 0 && floor > 0 {
		fmt.Fprintf(&out, "budget: the default's added cost at most 1.5x the floor's; this run: %.2fx\n", (med[budgetRow]-base)/floor)
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
		var progs struct {
			Enter *ebpf.Program `ebpf:"floor_enter"`
			Exit  *ebpf.Program `ebpf:"floor_exit"`
		}
		return attachFloorPrograms(part, &progs)
	}
}

// attachFloorPrograms loads the floor object's programs named in the struct
// progs points to (only those: the others may not load on this kernel) and
// attaches them.
func attachFloorPrograms(part uint32, progs any) (func(), error) {
	spec, err := loadFloor()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["part"].Set(part); err != nil {
		return nil, err
	}
	if err := spec.LoadAndAssign(progs, nil); err != nil {
		return nil, err
	}
	v := reflect.ValueOf(progs).Elem()
	var loaded []*ebpf.Program
	for i := range v.NumField() {
		loaded = append(loaded, v.Field(i).Interface().(*ebpf.Program))
	}
	closeAll := func(links []link.Link) {
		for _, l := range links {
			l.Close()
		}
		for _, p := range loaded {
			p.Close()
		}
	}
	var links []link.Link
	for _, p := range loaded {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			closeAll(links)
			return nil, err
		}
		links = append(links, l)
	}
	return func() { closeAll(links) }, nil
}

func latencyConfig(mode Mode, lo LatencyOptions) func() (func(), error) {
	return tracerConfig(Options{Sensors: []string{SensorLatency}, Attach: map[string]Mode{SensorLatency: mode}, Latency: lo})
}

// riders starts the latency sensor (tp_btf) with the rename and sem sensors
// forced into mode: tracepoint adds the kernel's perf syscall probes to the
// sys_enter/sys_exit tracepoints latency uses, tail_call rides on latency's.
func riders(mode Mode, lo LatencyOptions) func() (func(), error) {
	return tracerConfig(Options{
		Sensors: []string{SensorLatency, SensorRename, SensorSem},
		Attach:  map[string]Mode{SensorLatency: ModeTPBTF, SensorRename: mode, SensorSem: mode},
		Latency: lo, RetryInterval: -1,
	})
}

// allSensors starts the tracer as the daemon does by default: every sensor, best modes.
func allSensors(lo LatencyOptions) func() (func(), error) {
	return tracerConfig(Options{Latency: lo})
}

// tracerConfig starts a quiet tracer with opts, its events drained. Every
// sensor opts names must attach, so that a row is what it says; with none
// named, every sensor runs that can here, as in the daemon.
func tracerConfig(opts Options) func() (func(), error) {
	return func() (func(), error) {
		opts.Logger = quietLogger()
		tr, err := New(opts)
		if err != nil {
			return nil, err
		}
		if err := tr.Start(context.Background()); err != nil {
			return nil, err
		}
		for _, st := range tr.Status() {
			if st.Mode == "" && len(opts.Sensors) > 0 {
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

// BenchmarkSeccompOverhead (make bench-vm: this host refuses fentry) measures
// what the seccomp sensor adds to a getppid loop on a thread under a one-rule
// allow-all filter, which the kernel's action cache answers without running
// it, as it does for most syscalls under Docker's profile: no hooks, the
// floor (empty fentry/fexit on __seccomp_filter), and the sensor timing every
// filter run or one in sensor.DefaultSyscallSampleEvery. It prints a table and
// asserts nothing about time.
func BenchmarkSeccompOverhead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		b.Fatal(err)
	}
	floor := func() (func(), error) {
		var progs struct {
			Entry *ebpf.Program `ebpf:"floor_seccomp_entry"`
			Exit  *ebpf.Program `ebpf:"floor_seccomp_exit"`
		}
		return attachFloorPrograms(partEmpty, &progs)
	}
	if detach, err := floor(); err != nil {
		b.Skipf("no fentry on __seccomp_filter here (%v); run make bench-vm", err)
	} else {
		detach()
	}
	sensorConfig := func(every uint32, tid bool) func() (func(), error) {
		return tracerConfig(Options{Sensors: []string{SensorSeccomp}, Attach: map[string]Mode{SensorSeccomp: ModeFentry},
			Latency: LatencyOptions{SampleEvery: every, ForceTIDMap: tid}})
	}
	def := uint32(sensor.DefaultSyscallSampleEvery)
	configs := []benchConfig{
		{"no hooks", func() (func(), error) { return func() {}, nil }},
		{"floor (empty fentry/fexit)", floor},
		{fmt.Sprintf("seccomp default (1/%d timed)", def), sensorConfig(def, false)},
		{"seccomp all timed", sensorConfig(1, false)},
		// The per-thread state of kernels without task storage (5.10), here
		// side by side with task storage.
		{fmt.Sprintf("seccomp default, tid map (1/%d timed)", def), sensorConfig(def, true)},
		{"seccomp all timed, tid map", sensorConfig(1, true)},
	}
	// The loop thread carries the filter for good: it is never unlocked, so the
	// runtime ends it with the goroutine.
	done := make(chan []float64)
	go func() {
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			b.Error(err)
			close(done)
			return
		}
		allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: seccompRetAllw}}
		fprog := unix.SockFprog{Len: 1, Filter: &allow[0]}
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
			b.Error(err)
			close(done)
			return
		}
		done <- runInterleaved(b, configs, 15, 100_000)
	}()
	med, ok := <-done
	if !ok {
		return
	}
	printTable(b, fmt.Sprintf("getppid under a 1-rule seccomp filter, %d calls x %d interleaved rounds, medians (kernel %s, %d CPUs)", 100_000, 15, kernelRelease(), runtime.NumCPU()),
		configs, med, -1)
}

// BenchmarkCopyUpHookOverhead (make bench-vm: this host refuses fentry and has
// no kprobes) measures what the copyup sensor's fexit on do_splice_direct adds
// to every sendfile(2) between files on the host, copy-up or not: 4 KiB from
// the page cache into a file rewound each time. It prints a table and asserts
// nothing about time.
func BenchmarkCopyUpHookOverhead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	dir := b.TempDir()
	in, err := os.Create(filepath.Join(dir, "in"))
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Write(make([]byte, 4096)); err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	sensorIn := func(mode Mode) func() (func(), error) {
		return tracerConfig(Options{Sensors: []string{SensorCopyUp}, Attach: map[string]Mode{SensorCopyUp: mode}})
	}
	configs := []benchConfig{{"no hooks", func() (func(), error) { return func() {}, nil }}}
	for _, m := range []Mode{ModeFentry, ModeKprobe} {
		if detach, err := sensorIn(m)(); err == nil {
			detach()
			configs = append(configs, benchConfig{"copyup sensor, " + string(m), sensorIn(m)})
		}
	}
	if len(configs) == 1 {
		b.Skip("the copyup sensor attaches in no mode here; run make bench-vm")
	}
	const rounds, calls = 15, 20_000
	loop := func() float64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start := threadCPUTime()
		for i := 0; i < calls; i++ {
			var off int64
			unix.Seek(int(out.Fd()), 0, io.SeekStart)
			if _, err := unix.Sendfile(int(out.Fd()), int(in.Fd()), &off, 4096); err != nil {
				b.Fatal(err)
			}
		}
		return float64(threadCPUTime()-start) / calls
	}
	med := runInterleavedWith(b, configs, rounds, loop)
	// No floor row: each row's added cost is against no hooks.
	var table strings.Builder
	fmt.Fprintf(&table, "\nsendfile of 4 KiB file to file (+ lseek), %d calls x %d interleaved rounds, medians (kernel %s, %d CPUs)\n", calls, rounds, kernelRelease(), runtime.NumCPU())
	fmt.Fprintf(&table, "%-46s %10s %10s\n", "configuration", "ns/call", "added ns")
	for i, c := range configs {
		fmt.Fprintf(&table, "%-46s %10.0f %10.0f\n", c.name, med[i], med[i]-med[0])
	}
	fmt.Print(table.String())
}
