package tracer

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// TestCheckKernelRefusesClearly: a kernel without BTF or the ring buffer
// (openEuler 20.03's 4.19) gets one error naming each missing feature.
func TestCheckKernelRefusesClearly(t *testing.T) {
	noBTF := func() error { return fmt.Errorf("no BTF found for kernel version 4.19.90: %w", btf.ErrNotSupported) }
	noRing := func() error { return fmt.Errorf("map type RingBuf: %w", ebpf.ErrNotSupported) }
	ok := func() error { return nil }
	denied := func() error { return errors.New("operation not permitted") }
	for _, c := range []struct {
		name string
		p    kernelProbes
		want []string // substrings; none: no refusal
	}{
		{"4.19", kernelProbes{btf: noBTF, ringBuf: noRing}, []string{"no kernel BTF", "CONFIG_DEBUG_INFO_BTF", "no BPF ring buffer", "5.8"}},
		{"4.19 with BTF", kernelProbes{btf: ok, ringBuf: noRing}, []string{"no BPF ring buffer"}},
		{"5.10", kernelProbes{btf: ok, ringBuf: ok}, nil},
		{"probe not permitted", kernelProbes{btf: ok, ringBuf: denied}, nil},
	} {
		err := checkKernel(c.p)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: not refused", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, err, w)
			}
		}
		if c.name == "4.19 with BTF" && strings.Contains(err.Error(), "BTF (") {
			t.Errorf("%s: BTF named missing: %v", c.name, err)
		}
	}
}
