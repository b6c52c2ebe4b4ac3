package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// What every sensor needs from the kernel. Without either no sensor can load,
// so Start refuses with one error naming what is missing, instead of eight
// sensors failing with a map-create or CO-RE error each (openEuler 20.03's
// 4.19 lacks both).
type kernelProbes struct {
	btf     func() error // kernel BTF: every program is CO-RE
	ringBuf func() error // BPF_MAP_TYPE_RINGBUF: every event sensor's transport
}

var hostProbes = kernelProbes{
	btf: func() error {
		_, err := btf.LoadKernelSpec()
		return err
	},
	ringBuf: func() error { return features.HaveMapType(ebpf.RingBuf) },
}

// checkKernel names every missing requirement; nil when the kernel has them all.
// A probe that fails for another reason than absence (a permission) is not a
// refusal: the sensors then report their own errors.
func checkKernel(p kernelProbes) error {
	var missing []error
	if err := p.btf(); err != nil && errors.Is(err, btf.ErrNotSupported) {
		missing = append(missing, errors.New("no kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y, Linux 5.4+): the BPF programs are CO-RE and need the kernel's types"))
	}
	if err := p.ringBuf(); err != nil && errors.Is(err, ebpf.ErrNotSupported) {
		missing = append(missing, errors.New("no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8+): the sensors send their events through it"))
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("kernel unsupported: %w", errors.Join(missing...))
}
