package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/syscalls"
)

// The copyup sensor: overlayfs copying a file up from a lower layer
// (bpf/copyup.bpf.c). Naming: the sensor, its files and Go identifiers say
// copyup/CopyUp; its JSON event type stays "copy_up" (event.TypeCopyUp, the
// user-visible schema) and its C record is struct copy_up_event.
var copyUpSensor = sensorDef{
	name:      SensorCopyUp,
	load:      loadCopyup,
	modes:     []Mode{ModeFentry, ModeKprobe},
	configure: configureCopyUp,
	variant:   copyUpVariant,
	decode:    decodeCopyUp,
	ringBytes: 2 << 20,
}

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

// copyUpVariant probes the kernel's BTF for overlay's types. fentry needs
// them regardless (its attach targets are overlay's functions), so only the
// kprobe mode falls back.
func copyUpVariant(spec *ebpf.CollectionSpec, m Mode, _ *Options) (string, error) {
	if m != ModeKprobe {
		return TypesOverlay, nil
	}
	have, err := kernelHasType("overlay", overlayProbeType)
	if err != nil {
		return "", fmt.Errorf("probe overlay BTF: %w", err)
	}
	if have {
		return TypesOverlay, nil
	}
	var vars copyupVariableSpecs
	if err := spec.Assign(&vars); err != nil {
		return "", fmt.Errorf("copyup object: %w", err)
	}
	if err := vars.VmlinuxOnly.Set(true); err != nil {
		return "", fmt.Errorf("set vmlinux_only: %w", err)
	}
	// Their argument is overlay's copy-up context: nothing to read without its type.
	for name, p := range spec.Programs {
		if fn := hookTarget(p.SectionName); fn == "ovl_copy_up_data" || fn == "ovl_copy_up_metadata" {
			delete(spec.Programs, name)
		}
	}
	return TypesVmlinuxOnly, nil
}

func decodeCopyUp(raw []byte) (event.Event, error) {
	r, err := view[copyupCopyUpEvent](raw)
	if err != nil {
		return nil, err
	}
	if copyupEventType(r.Hdr.Type) != copyupEventTypeEVENT_COPY_UP {
		return nil, fmt.Errorf("copyup sensor: unexpected record type %d", r.Hdr.Type)
	}
	ev := &event.CopyUp{
		Header:      header(event.TypeCopyUp, &r.Hdr),
		Path:        copyUpPath(r.Names[:min(int(r.Depth), len(r.Names))], r.Truncated != 0),
		BytesCopied: r.Bytes,
		DurationNS:  r.DurationNs,
		Result:      "ok",
		Trigger:     syscallName(r.SyscallNr),
		SyscallNr:   r.SyscallNr,
	}
	if r.Ret < 0 {
		ev.Errno = -r.Ret
		ev.Result = errnoName(-r.Ret)
	}
	if r.HaveMode != 0 {
		ev.FileType = fileType(r.Mode)
	}
	if r.HaveLower != 0 {
		ok := r.Ret == 0
		ev.Size, ev.Nlink = ptr(r.Size), ptr(r.Nlink)
		ev.MetadataOnly = ptr(ok && r.Metacopy != 0)
		// With index=on overlay keeps the links together through its index.
		ev.HardlinksBroken = ptr(ok && r.Mode&unix.S_IFMT == unix.S_IFREG && r.Nlink > 1 && r.Indexed == 0)
	}
	return ev, nil
}

// copyUpPath joins the components the BPF program collected leaf first.
func copyUpPath(names [][64]int8, truncated bool) string {
	var b strings.Builder
	if truncated {
		b.WriteString("...")
	}
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(cString(names[i][:]))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func errnoName(errno int32) string {
	if n := unix.ErrnoName(unix.Errno(errno)); n != "" {
		return n
	}
	return fmt.Sprintf("errno_%d", errno)
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char_device"
	case unix.S_IFBLK:
		return "block_device"
	}
	return "unknown"
}

// syscallName names the trigger; -1 and -2 are the BPF program's markers for a
// kernel thread and an io_uring worker, which have no syscall of their own, -3
// for user registers it could not find (kernels before bpf_task_pt_regs).
func syscallName(nr int64) string {
	switch nr {
	case -1:
		return "kernel"
	case -2:
		return "io_uring"
	case -3:
		return "unknown"
	}
	return syscalls.Name(nr)
}

func ptr[T any](v T) *T { return &v }
