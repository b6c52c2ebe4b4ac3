package tracer

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Which types the copyup sensor's programs may read (bpf/copyup.bpf.c). Its
// full programs read overlayfs's own types (the overlay inode's lower dentry,
// the copy-up context); CO-RE finds them in vmlinux BTF when overlay is built
// in, or in the module's BTF (/sys/kernel/btf/overlay, 5.11+). Where neither
// has them (5.10: module BTF does not exist) the kprobe programs run in
// vmlinux-only form: what needs overlay's types is reported absent.
const (
	TypesOverlay     = "overlay_types" // the full event
	TypesVmlinuxOnly = "vmlinux_only"  // no size, nlink, metadata_only, hardlinks_broken
)

// overlayProbeType is a type only overlayfs defines.
const overlayProbeType = "ovl_inode"

// kernelHasType tells whether vmlinux BTF or the module's BTF defines a type.
// A module without BTF, or not loaded, has none.
func kernelHasType(module, typ string) (bool, error) {
	vmlinux, err := btf.LoadKernelSpec()
	if err != nil {
		return false, err
	}
	if _, err := vmlinux.AnyTypeByName(typ); err == nil {
		return true, nil
	}
	mod, err := btf.LoadKernelModuleSpec(module)
	if errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "no such file")) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("module %s: %w", module, err)
	}
	_, err = mod.AnyTypeByName(typ)
	return err == nil, nil
}
