package tracer

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/syscalls"
)

func decodeCopyUp(raw []byte) (event.Event, error) {
	r, err := view[copyupCopyUpEvent](raw)
	if err != nil {
		return nil, err
	}
	if r.Hdr.Type != recCopyUp {
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
