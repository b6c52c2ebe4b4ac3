package tracer

import (
	"errors"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The function a reflink copy-up goes through differs by kernel: Debian's 6.1
// overlay calls do_clone_file_range (vfs_clone_file_range is a wrapper around
// it there, used by the FICLONE ioctl), 6.12 calls vfs_clone_file_range and no
// longer has do_clone_file_range. copyup.bpf.c has a clone hook for each; the
// generic attach works from section names alone, so this picks one before load:
// the inner function when the kernel has it (it sees both callers), else the
// outer. Hooking both would count a 6.1 FICLONE twice; hooking only the outer
// would miss every cloned copy-up on 6.1 (bytes_copied 0).
const (
	cloneInner = "do_clone_file_range"
	cloneOuter = "vfs_clone_file_range"
)

func configureCopyUp(spec *ebpf.CollectionSpec, _ *Options) error {
	target := cloneTarget(kernelHasFunc)
	for name, p := range spec.Programs {
		if fn := hookTarget(p.SectionName); (fn == cloneInner || fn == cloneOuter) && fn != target {
			delete(spec.Programs, name)
		}
	}
	return nil
}

// cloneTarget picks the clone hook. Without kernel BTF the outer function is
// the safe choice: it exists on every kernel since 4.20.
func cloneTarget(has func(string) (bool, error)) string {
	if ok, err := has(cloneInner); err == nil && ok {
		return cloneInner
	}
	return cloneOuter
}

// kernelHasFunc tells whether vmlinux BTF describes a function: one that can be
// hooked by fentry, and that is not inlined away for kprobes either.
func kernelHasFunc(name string) (bool, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false, err
	}
	var fn *btf.Func
	err = spec.TypeByName(name, &fn)
	if errors.Is(err, btf.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// hookTarget is the kernel function a fentry/fexit/kprobe/kretprobe section names.
func hookTarget(section string) string {
	_, fn, _ := strings.Cut(section, "/")
	return fn
}
