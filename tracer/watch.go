package tracer

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
)

const maxWatch = 16

// DefaultWatchComms are the container daemons whose fatal signals and exits matter.
var DefaultWatchComms = []string{"dockerd", "containerd", "containerd-shim*", "runc", "docker-proxy"}

// watchPatterns turns comm names into the signal sensor's patterns. The kernel
// truncates comm to 15 bytes, so longer names could never match.
func watchPatterns(comms []string) ([maxWatch]signalCommPattern, error) {
	var out [maxWatch]signalCommPattern
	if len(comms) > maxWatch {
		return out, fmt.Errorf("watch list has %d names, at most %d are supported", len(comms), maxWatch)
	}
	for i, c := range comms {
		prefix := strings.HasSuffix(c, "*")
		c = strings.TrimSuffix(c, "*")
		if c == "" || strings.Contains(c, "*") {
			return out, fmt.Errorf("watch name %q: want a comm, optionally ending in *", comms[i])
		}
		if len(c) > 15 {
			return out, fmt.Errorf("watch name %q is longer than the kernel's 15-byte comm", c)
		}
		for j := 0; j < len(c); j++ {
			out[i].Comm[j] = int8(c[j])
		}
		out[i].Len = uint32(len(c))
		if prefix {
			out[i].Prefix = 1
		}
	}
	return out, nil
}

func configureSignal(spec *ebpf.CollectionSpec, opts *Options) error {
	comms := opts.WatchComms
	if comms == nil {
		comms = DefaultWatchComms
	}
	patterns, err := watchPatterns(comms)
	if err != nil {
		return err
	}
	if err := spec.Variables["watch"].Set(patterns); err != nil {
		return fmt.Errorf("set watch list: %w", err)
	}
	if err := spec.Variables["watch_count"].Set(uint32(len(comms))); err != nil {
		return fmt.Errorf("set watch count: %w", err)
	}
	return nil
}
