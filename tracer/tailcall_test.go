package tracer

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/syscalls"
)

// modeOptions adds what a mode needs besides the sensor under test: tail_call
// rides on the latency sensor, which the daemon runs by default, sampling as
// the daemon does.
func modeOptions(mode Mode, opts Options) Options {
	if mode == ModeTailCall {
		opts.Sensors = append(opts.Sensors, SensorLatency)
		if opts.Latency.SampleEvery == 0 {
			opts.Latency.SampleEvery = sensor.DefaultSyscallSampleEvery
		}
	}
	return opts
}

// TestTailCallPrograms checks the per-sensor syscall lists against the BPF
// objects: each names programs of the right hook, every tp_btf program is
// used, and on every architecture with a table the numbers fit the latency
// sensor's prog arrays and each sensor keeps a slot.
func TestTailCallPrograms(t *testing.T) {
	lat, err := loadLatency()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{mapEnterTails, mapExitTails} {
		m := lat.Maps[name]
		if m == nil || m.Type != ebpf.ProgramArray || m.MaxEntries != uint32(syscallTails) {
			t.Fatalf("latency map %s = %+v, want a prog array of %d", name, m, syscallTails)
		}
	}
	var riders int
	for _, def := range sensors() {
		if slices.Contains(def.modes, ModeTailCall) != (len(def.tailCalls) > 0) {
			t.Errorf("%s: modes %v but %d tail calls", def.name, def.modes, len(def.tailCalls))
		}
		if len(def.tailCalls) == 0 {
			continue
		}
		riders++
		spec, err := def.load()
		if err != nil {
			t.Fatal(err)
		}
		// A misspelt name would have no slot anywhere and be skipped silently.
		for _, c := range def.tailCalls {
			known := false
			for _, arch := range []string{"amd64", "arm64"} {
				table, _ := syscalls.ForArch(arch)
				_, ok := table.Number(c.syscall)
				known = known || ok
			}
			if !known {
				t.Errorf("%s: syscall %q is in no architecture's table", def.name, c.syscall)
			}
		}
		for _, arch := range []string{"amd64", "arm64"} {
			table, _ := syscalls.ForArch(arch)
			var slots int
			for _, c := range def.tailCalls {
				if nr, ok := table.Number(c.syscall); ok && nr >= int64(syscallTails) {
					t.Errorf("%s: %s syscall %s (%d) outside the prog arrays", def.name, arch, c.syscall, nr)
				}
				if _, ok := c.slot(table); ok {
					slots++
				}
			}
			if slots == 0 {
				t.Errorf("%s: no tail-call slot on %s", def.name, arch)
			}
		}
		used := map[string]bool{}
		for _, c := range def.tailCalls {
			for name, section := range map[string]string{c.enter: "tp_btf/sys_enter", c.exit: "tp_btf/sys_exit"} {
				p := spec.Programs[name]
				if p == nil || p.SectionName != section {
					t.Errorf("%s: %s: program %q is not in section %s", def.name, c.syscall, name, section)
				}
				used[name] = true
			}
		}
		for name, p := range spec.Programs {
			if ModeTailCall.owns(p.SectionName) && !used[name] {
				t.Errorf("%s: program %s (%s) is in no syscall's slot", def.name, name, p.SectionName)
			}
		}
	}
	if riders != 2 {
		t.Errorf("%d sensors offer tail_call, want rename and sem", riders)
	}
}

// TestSyscallTablesFitTails: every syscall number of the architectures the
// objects are built for indexes the prog arrays (SYSCALL_TAILS), so no
// syscall a sensor may one day handle is out of reach.
func TestSyscallTablesFitTails(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		table, ok := syscalls.ForArch(arch)
		if !ok {
			t.Fatalf("no %s syscall table", arch)
		}
		for nr := int64(syscallTails); nr < 1024; nr++ {
			if name := table.Name(nr); !strings.HasPrefix(name, "syscall_") {
				t.Errorf("%s: %s is %d, past SYSCALL_TAILS (%d)", arch, name, nr, syscallTails)
			}
		}
	}
}

// TestAbsentSyscall: on arm64 rename's programs (tail_call and tracepoint)
// are left out, renameat's kept; on amd64 all are kept; other sections never
// count as a syscall's.
func TestAbsentSyscall(t *testing.T) {
	amd64, _ := syscalls.ForArch("amd64")
	arm64, _ := syscalls.ForArch("arm64")
	for _, c := range []struct {
		table         *syscalls.Table
		prog, section string
		want          bool
	}{
		{arm64, renameProgRenameTailEnter, "tp_btf/sys_enter", true},
		{arm64, renameProgRenameTailExit, "tp_btf/sys_exit", true},
		{arm64, renameProgRenameEnter, "tracepoint/syscalls/sys_enter_rename", true},
		{arm64, renameProgRenameExit, "tracepoint/syscalls/sys_exit_rename", true},
		{arm64, renameProgRenameatTailEnter, "tp_btf/sys_enter", false},
		{arm64, renameProgRenameatEnter, "tracepoint/syscalls/sys_enter_renameat", false},
		{arm64, semProgSemgetEnter, "tracepoint/syscalls/sys_enter_semget", false},
		{amd64, renameProgRenameTailEnter, "tp_btf/sys_enter", false},
		{amd64, renameProgRenameEnter, "tracepoint/syscalls/sys_enter_rename", false},
		{arm64, "rename_fentry", "fentry/do_renameat2", false},
		{arm64, "x", "tracepoint/signal/signal_generate", false},
	} {
		if got := absentSyscall(renameTailCalls, c.prog, c.section, c.table); got != c.want {
			t.Errorf("%s: %s %s: absent = %v, want %v", c.table.Arch(), c.prog, c.section, got, c.want)
		}
	}
}

// TestArchObjectsAlike: the amd64 and arm64 objects come from the same C, so
// they hold the same programs in the same sections and the same maps; only
// register reads differ (bpf/arch.h). Read from the committed .o files, so
// both are checked whichever architecture runs the test.
func TestArchObjectsAlike(t *testing.T) {
	matches, err := filepath.Glob("*_x86_bpfel*.o")
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Skip("no BPF objects in the working directory: not run from the source tree (a vmtest guest)")
	}
	for _, x86 := range matches {
		arm64 := strings.Replace(x86, "_x86_", "_arm64_", 1)
		a, err := ebpf.LoadCollectionSpec(x86)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ebpf.LoadCollectionSpec(arm64)
		if err != nil {
			t.Fatalf("%s has no arm64 twin: %v", x86, err)
		}
		sections := func(s *ebpf.CollectionSpec) map[string]string {
			m := map[string]string{}
			for name, p := range s.Programs {
				m[name] = p.SectionName
			}
			return m
		}
		if !maps.Equal(sections(a), sections(b)) {
			t.Errorf("%s and %s: programs differ:\n%v\n%v", x86, arm64, sections(a), sections(b))
		}
		if !slices.Equal(slices.Sorted(maps.Keys(a.Maps)), slices.Sorted(maps.Keys(b.Maps))) {
			t.Errorf("%s and %s: maps differ", x86, arm64)
		}
	}
}

func TestAttachOrder(t *testing.T) {
	var names []string
	for _, s := range attachOrder(sensors()) {
		names = append(names, s.name)
	}
	lat := slices.Index(names, SensorLatency)
	for _, rider := range []string{SensorRename, SensorSem} {
		if i := slices.Index(names, rider); i < lat {
			t.Errorf("order %v: %s before %s, whose hooks it rides", names, rider, SensorLatency)
		}
	}
}

func TestRetryableTailCall(t *testing.T) {
	rename := sensorDef{name: SensorRename, modes: []Mode{ModeFentry, ModeKprobe, ModeTailCall, ModeTracepoint}}
	for _, c := range []struct {
		opts Options
		want bool
	}{
		{Options{Attach: map[string]Mode{SensorRename: ModeTailCall}}, true},
		{Options{Sensors: []string{SensorRename, SensorLatency}, Attach: map[string]Mode{SensorRename: ModeTailCall}}, true},
		{Options{Attach: map[string]Mode{SensorRename: ModeTailCall, SensorLatency: ModeTPBTF}}, true},
		// The latency sensor not enabled, or forced into a mode that does not tail-call.
		{Options{Sensors: []string{SensorRename}, Attach: map[string]Mode{SensorRename: ModeTailCall}}, false},
		{Options{Attach: map[string]Mode{SensorRename: ModeTailCall, SensorLatency: ModeRawTP}}, false},
		{Options{Attach: map[string]Mode{"*": ModeTailCall}}, false},
		// Not forced: another mode may come.
		{Options{Sensors: []string{SensorRename}}, true},
	} {
		if got := rename.retryable(&c.opts); got != c.want {
			t.Errorf("sensors %v attach %v: retryable = %v, want %v", c.opts.Sensors, c.opts.Attach, got, c.want)
		}
	}
}

// TestTailCallNeedsLatency: without the latency sensor in tp_btf mode,
// tail_call is refused with the reason, never silently replaced, and the
// sensor's default falls back to another mode.
func TestTailCallNeedsLatency(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"latency not enabled", Options{}},
		{"latency raw_tracepoint", Options{Sensors: []string{SensorLatency}, Attach: map[string]Mode{SensorLatency: ModeRawTP}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, name := range []string{SensorRename, SensorSem} {
				opts := c.opts
				opts.Sensors = append([]string{name}, opts.Sensors...)
				opts.Attach = map[string]Mode{name: ModeTailCall}
				for k, v := range c.opts.Attach {
					opts.Attach[k] = v
				}
				opts.RetryInterval = -1
				tr := startTracer(t, opts)
				st, _ := statusOf(tr, name)
				if st.Mode != "" || !strings.Contains(st.Unavailable, errNoTailHooks.Error()) {
					t.Errorf("%s forced to tail_call: status %+v, want unavailable: %v", name, st, errNoTailHooks)
				}
				opts.Attach = c.opts.Attach
				tr = startTracer(t, opts)
				if st, _ := statusOf(tr, name); st.Mode == "" || st.Mode == string(ModeTailCall) {
					t.Errorf("%s by default: status %+v, want another mode", name, st)
				}
			}
		})
	}
}

// startTracer starts a tracer, which may fail to start when nothing attaches.
func startTracer(t *testing.T, opts Options) *Tracer {
	t.Helper()
	opts.Logger = quietLogger()
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	tr.Start(t.Context())
	return tr
}

// TestTailCallLatencyConfigs: the tail calls come after the latency sensor's
// own work on every path, so rename in tail_call mode sees its syscalls
// whether latency times all of them, one in 16, or (containers-only) none of
// this host process's; and latency still counts.
func TestTailCallLatencyConfigs(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name string
		lo   LatencyOptions
	}{
		{"all timed", LatencyOptions{SampleEvery: 1}},
		{"sampled", LatencyOptions{SampleEvery: sensor.DefaultSyscallSampleEvery}},
		{"containers-only", LatencyOptions{SampleEvery: sensor.DefaultSyscallSampleEvery, ContainersOnly: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := startSensor(t, SensorRename, ModeTailCall, modeOptions(ModeTailCall, Options{Latency: c.lo}))
			if tr == nil {
				return
			}
			testRenameExdev(t, tr)
			snap, err := tr.SyscallLatency()
			if err != nil {
				t.Fatal(err)
			}
			var calls uint64
			for _, l := range snap.Latency {
				calls += l.Calls
			}
			if c.lo.ContainersOnly != (calls == 0) {
				t.Errorf("latency counted %d syscalls (containers-only %v)", calls, c.lo.ContainersOnly)
			}
		})
	}
}

// TestTailCallSlotsEmptied: detaching a sensor in tail_call mode (as its
// reader does when it fails) and closing the tracer empty the latency
// sensor's prog-array slots: none is left calling a program whose ring
// buffer is gone.
func TestTailCallSlotsEmptied(t *testing.T) {
	requireRoot(t)
	opts := Options{
		Sensors: []string{SensorLatency, SensorRename, SensorSem},
		Attach:  map[string]Mode{SensorRename: ModeTailCall, SensorSem: ModeTailCall},
	}
	tr := startTracer(t, opts)
	for _, name := range []string{SensorRename, SensorSem} {
		if st, _ := statusOf(tr, name); st.Mode != string(ModeTailCall) {
			offered, _ := kernelOffers(t, "", ModeTailCall)
			if !offered {
				t.Skipf("tail_call not offered here: %+v", st)
			}
			t.Fatalf("%s: status %+v, want tail_call", name, st)
		}
	}
	hooks := tr.tailHooks()
	// Our own descriptors: they keep the prog arrays, and their entries, alive
	// after the tracer closes its own.
	var arrays []*ebpf.Map
	for _, m := range []*ebpf.Map{hooks.enter, hooks.exit} {
		c, err := m.Clone()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		arrays = append(arrays, c)
	}
	set := func(nr int) (enter, exit bool) {
		var id uint32
		enterErr, exitErr := arrays[0].Lookup(uint32(nr), &id), arrays[1].Lookup(uint32(nr), &id)
		for _, err := range []error{enterErr, exitErr} {
			if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Fatalf("lookup slot %d: %v", nr, err)
			}
		}
		return enterErr == nil, exitErr == nil
	}
	want := func(when string, nrs []int, wantSet bool) {
		t.Helper()
		for _, nr := range nrs {
			if enter, exit := set(nr); enter != wantSet || exit != wantSet {
				t.Errorf("%s: slot %d set enter %v exit %v, want %v", when, nr, enter, exit, wantSet)
			}
		}
	}
	// The slots of this architecture's numbers (arm64 has no rename).
	nrs := func(names ...string) []int {
		var out []int
		for _, name := range names {
			if nr, ok := syscalls.Native.Number(name); ok {
				out = append(out, int(nr))
			}
		}
		return out
	}
	renameNrs := nrs("rename", "renameat", "renameat2")
	semNrs := nrs("semget", "semctl")
	want("attached", append(renameNrs, semNrs...), true)
	want("attached", nrs("getppid", "openat"), false)

	for _, r := range tr.running {
		if r.def.name == SensorRename {
			r.att.detach()
		}
	}
	want("rename detached", renameNrs, false)
	want("rename detached", semNrs, true)

	tr.Close()
	want("tracer closed", semNrs, false)
}

// TestTailCallLateAttach: a sensor that attaches on a retry, after the
// latency sensor, gets tail_call and its events.
func TestTailCallLateAttach(t *testing.T) {
	requireRoot(t)
	tr := startTracer(t, Options{
		Sensors:       []string{SensorLatency},
		Attach:        map[string]Mode{SensorRename: ModeTailCall},
		RetryInterval: -1, // this test drives the retry itself
	})
	var rename sensorDef
	for _, s := range sensors() {
		if s.name == SensorRename {
			rename = s
		}
	}
	if still := tr.retry(t.Context(), []*pending{{def: rename, reason: "not yet"}}); len(still) > 0 {
		offered, _ := kernelOffers(t, "", ModeTailCall)
		if !offered {
			t.Skipf("tail_call not offered here: %s", still[0].reason)
		}
		t.Fatalf("retry: rename still pending: %s", still[0].reason)
	}
	if st, _ := statusOf(tr, SensorRename); st.Mode != string(ModeTailCall) {
		t.Fatalf("rename after retry: %+v, want tail_call", st)
	}
	testRenameExdev(t, tr)
}
