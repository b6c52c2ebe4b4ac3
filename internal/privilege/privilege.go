// Package privilege checks, before anything is loaded, that the process holds the
// capabilities BPF tracing needs, so the error names what is missing.
package privilege

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability numbers newer than some x/sys releases name.
const (
	capPerfmon = 38
	capBPF     = 39
)

// Check returns an error naming the missing capabilities. CAP_SYS_ADMIN alone is
// enough (kernels before 5.8 know nothing else); otherwise CAP_BPF and
// CAP_PERFMON are needed.
func Check() error {
	eff, err := effective()
	if err != nil {
		return err
	}
	return check(eff)
}

func check(eff uint64) error {
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if has(unix.CAP_SYS_ADMIN) {
		return nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing %s: run as root or grant them (e.g. setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep observer)", strings.Join(missing, " and "))
}

func effective() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}
