package tracer

import (
	"fmt"
	"strings"
)

// Mode is a way of attaching a sensor to the kernel.
type Mode string

const (
	ModeFentry     Mode = "fentry"         // fentry/fexit: cheapest, needs BTF and trampolines
	ModeKprobe     Mode = "kprobe"         // kprobe/kretprobe: needs CONFIG_KPROBES
	ModeTPBTF      Mode = "tp_btf"         // BTF-typed raw tracepoints: task pointers as arguments
	ModeRawTP      Mode = "raw_tracepoint" // raw tracepoints: untyped arguments, no BTF attach
	ModeTracepoint Mode = "tracepoint"     // classic tracepoints: stable record layouts
	// ModeTailCall: tp_btf programs tail-called by the latency sensor's
	// sys_enter/sys_exit hooks, so that no second probe joins them (tailcall.go).
	ModeTailCall Mode = "tail_call"
)

// Modes lists every mode, best first.
var Modes = []Mode{ModeFentry, ModeKprobe, ModeTPBTF, ModeRawTP, ModeTailCall, ModeTracepoint}

// ParseMode accepts a mode name as given on the command line.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown attach mode %q (want one of %s)", s, joinModes(Modes))
}

// sectionPrefixes tells which program sections belong to a mode.
func (m Mode) sectionPrefixes() []string {
	switch m {
	case ModeFentry:
		return []string{"fentry/", "fexit/"}
	case ModeKprobe:
		return []string{"kprobe/", "kretprobe/"}
	case ModeTPBTF, ModeTailCall:
		return []string{"tp_btf/"}
	case ModeRawTP:
		return []string{"raw_tracepoint/", "raw_tp/"}
	case ModeTracepoint:
		return []string{"tracepoint/"}
	}
	return nil
}

func (m Mode) owns(section string) bool {
	for _, p := range m.sectionPrefixes() {
		if strings.HasPrefix(section, p) {
			return true
		}
	}
	return false
}

func joinModes(ms []Mode) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}
