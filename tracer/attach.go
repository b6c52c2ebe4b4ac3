package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attach links one loaded program to the hook its ELF section names, so that a
// sensor's programs need no per-program attach code.
func attach(section string, prog *ebpf.Program) (link.Link, error) {
	kind, target, _ := strings.Cut(section, "/")
	switch kind {
	case "fentry", "fexit", "tp_btf":
		return link.AttachTracing(link.TracingOptions{Program: prog})
	case "kprobe", "kretprobe":
		if !haveKprobes() {
			return nil, errors.New("kernel has no kprobes (CONFIG_KPROBES is off)")
		}
		if kind == "kretprobe" {
			return link.Kretprobe(target, prog, nil)
		}
		return link.Kprobe(target, prog, nil)
	case "raw_tracepoint", "raw_tp":
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: target, Program: prog})
	case "tracepoint":
		group, name, ok := strings.Cut(target, "/")
		if !ok {
			return nil, fmt.Errorf("section %q: want tracepoint/<group>/<name>", section)
		}
		return link.Tracepoint(group, name, prog, nil)
	}
	return nil, fmt.Errorf("section %q: no attach rule", section)
}

// haveKprobes tells whether the kernel registered the kprobe PMU, which exists
// exactly when it was built with CONFIG_KPROBES.
func haveKprobes() bool {
	_, err := os.Stat("/sys/bus/event_source/devices/kprobe/type")
	return err == nil
}
