package tracer

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/observer-dev/observer/internal/syscalls"
)

// The tail_call mode (bpf/syscall_tail.h). A tracepoint with one probe calls
// it directly; with two or more the kernel loops over them with indirect
// calls, which under retpolines cost more than the probes themselves. The
// rename and sem sensors' tracepoint mode adds the kernel's perf syscall
// probe to the sys_enter/sys_exit tracepoints the latency sensor already
// uses; in tail_call mode they add no probe: the latency sensor's tp_btf
// programs tail-call theirs, by syscall number, from two prog arrays.

// tailCall is one syscall a sensor handles in tail_call mode: its programs,
// which go into the latency sensor's prog arrays at the syscall's number.
type tailCall struct {
	syscall string // its name; the number is the running architecture's
	enter   string // program for sys_enter, in the sensor's object
	exit    string // program for sys_exit
}

// syscallTail names a syscall's pair of tail_call programs. The names are
// bpf2go's constants for the programs SYSCALL_PROGRAMS (bpf/syscall_tail.h)
// defines, so a program renamed in C fails the build here, not the attach.
// The syscall is named, not numbered: numbers differ between architectures
// and some syscalls exist on only one (arm64 has no rename).
func syscallTail(syscall, enter, exit string) tailCall {
	return tailCall{syscall: syscall, enter: enter, exit: exit}
}

// slot is the call's prog-array index on an architecture, false when the
// architecture has no such syscall: then its programs have no slot, which is
// not a failure (the architecture's other syscalls carry the same operation).
func (c tailCall) slot(t *syscalls.Table) (uint32, bool) {
	nr, ok := t.Number(c.syscall)
	if !ok || nr >= int64(syscallTails) {
		return 0, false
	}
	return uint32(nr), true
}

// absentSyscall tells whether a program is for a syscall the architecture
// lacks: a tail_call program without a slot, or the tracepoint of such a
// syscall (syscalls/sys_enter_rename on arm64, which the kernel does not have
// either). Such a program is left out, neither loaded nor attached.
func absentSyscall(calls []tailCall, prog, section string, t *syscalls.Table) bool {
	for _, c := range calls {
		if prog == c.enter || prog == c.exit {
			_, ok := c.slot(t)
			return !ok
		}
	}
	name, ok := strings.CutPrefix(section, "tracepoint/syscalls/sys_enter_")
	if !ok {
		name, ok = strings.CutPrefix(section, "tracepoint/syscalls/sys_exit_")
	}
	if !ok {
		return false
	}
	_, have := t.Number(name)
	return !have
}

// syscallTails is SYSCALL_TAILS in bpf/syscall_tail.h: the prog arrays' size.
const syscallTails = int(latencySyscallTailSizeSYSCALL_TAILS)

// The latency sensor's prog arrays (bpf/latency.bpf.c).
const (
	mapEnterTails = latencyMapSysEnterTails
	mapExitTails  = latencyMapSysExitTails
)

var errNoTailHooks = errors.New("latency sensor not running in tp_btf mode: tail calls ride on its sys_enter/sys_exit hooks")

// tailHooks are the running latency sensor's prog arrays.
type tailHooks struct{ enter, exit *ebpf.Map }

// tailHooks returns the latency sensor's prog arrays, or nil when it is not
// running in tp_btf mode (its raw_tracepoint programs do not tail-call).
// Start and the retry loop call it; only they add sensors, and Close closes
// them only after both have finished.
func (t *Tracer) tailHooks() *tailHooks {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	for _, r := range t.running {
		if r.def.name == SensorLatency && r.att.mode == ModeTPBTF {
			return &tailHooks{enter: r.att.coll.Maps[mapEnterTails], exit: r.att.coll.Maps[mapExitTails]}
		}
	}
	return nil
}

// install puts a sensor's programs into the slots of their syscalls. The
// returned closer empties those slots again. It holds its own descriptors of
// the prog arrays, so it works whichever sensor is closed first; and the
// kernel clears a prog array whose last descriptor closes, so no slot outlives
// both sensors.
// Calls whose syscall the architecture (table) lacks are skipped.
func (h *tailHooks) install(calls []tailCall, progs map[string]*ebpf.Program, table *syscalls.Table) (io.Closer, error) {
	if !slices.ContainsFunc(calls, func(c tailCall) bool { _, ok := c.slot(table); return ok }) {
		return nil, fmt.Errorf("sensor lists no %s syscalls to tail-call", table.Arch())
	}
	s := &tailSlots{}
	for _, m := range []*ebpf.Map{h.enter, h.exit} {
		c, err := m.Clone()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("tail calls: %w", err)
		}
		s.maps = append(s.maps, c)
	}
	for _, c := range calls {
		nr, ok := c.slot(table)
		if !ok {
			continue
		}
		for i, name := range []string{c.enter, c.exit} {
			p := progs[name]
			if p == nil {
				s.Close()
				return nil, fmt.Errorf("tail calls: no program %s for %s", name, c.syscall)
			}
			m := s.maps[i]
			if err := m.Put(nr, p); err != nil {
				s.Close()
				return nil, fmt.Errorf("tail calls: put %s in %s[%d]: %w", name, [...]string{mapEnterTails, mapExitTails}[i], nr, err)
			}
			s.slots = append(s.slots, tailSlot{m, nr})
		}
	}
	return s, nil
}

// tailSlots are a sensor's entries in the latency sensor's prog arrays.
type tailSlots struct {
	maps  []*ebpf.Map // clones of the prog arrays' descriptors
	slots []tailSlot
}

type tailSlot struct {
	m  *ebpf.Map
	nr uint32
}

// Close deletes the entries, so the latency sensor no longer calls the
// sensor's programs, then closes its descriptors.
func (s *tailSlots) Close() error {
	var errs []error
	for _, sl := range s.slots {
		if err := sl.m.Delete(sl.nr); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete tail call %d: %w", sl.nr, err))
		}
	}
	s.slots = nil
	for _, m := range s.maps {
		m.Close()
	}
	s.maps = nil
	return errors.Join(errs...)
}

// attachOrder puts the sensors that can ride on the latency sensor's hooks
// after the others, so that the latency sensor is running when they attach.
func attachOrder(defs []sensorDef) []sensorDef {
	rides := func(s sensorDef) int { return min(len(s.tailCalls), 1) }
	slices.SortStableFunc(defs, func(a, b sensorDef) int { return cmp.Compare(rides(a), rides(b)) })
	return defs
}

// latencyMayTailCall tells whether the options let the latency sensor run in
// tp_btf mode, without which no tail_call attempt can succeed.
func (o *Options) latencyMayTailCall() bool {
	if len(o.Sensors) > 0 && !slices.Contains(o.Sensors, SensorLatency) {
		return false
	}
	m, forced := o.forcedMode(SensorLatency)
	return !forced || m == ModeTPBTF
}
