package event

import (
	"fmt"
	"time"
)

// TypeCopyUp is an overlayfs copy-up.
const TypeCopyUp = "copy_up"

func init() { Register(TypeCopyUp, func() Event { return new(CopyUp) }) }

// CopyUp is one file or directory that overlayfs copied from a lower (image)
// layer up to the container's layer, e.g. on the first write to an image file.
// The header describes the task whose syscall caused it.
type CopyUp struct {
	Header
	// Path inside the overlay mount (the container's root), at most 8 components
	// of at most 63 bytes each; it starts with ".../" when the file lies deeper.
	Path     string `json:"path"`
	FileType string `json:"file_type,omitempty"` // regular, directory, symlink, ...; empty when the inode was not found
	// Size is the lower file's size; BytesCopied what was actually spliced or
	// cloned into the upper layer (0 for a metadata-only or O_TRUNC copy-up).
	// Size, MetadataOnly, Nlink and HardlinksBroken are nil (omitted) when the
	// sensor could not know them: the lower inode was not found, or the kernel
	// has no BTF for overlay's types (the vmlinux_only variant, 5.10).
	Size        *uint64 `json:"size,omitempty"`
	BytesCopied uint64  `json:"bytes_copied"`
	DurationNS  uint64  `json:"duration_ns"`
	// Result is "ok" or the errno name (e.g. ENOSPC); Errno is its number.
	Result string `json:"result"`
	Errno  int32  `json:"errno,omitempty"`
	// MetadataOnly is a metacopy copy-up: only inode metadata moved up (mount
	// option metacopy=on); the data follows on the first write.
	MetadataOnly *bool `json:"metadata_only,omitempty"`
	// Trigger is the syscall that caused it (openat, truncate, fchmodat, ...),
	// "kernel" for a kernel thread, "io_uring" for an io_uring worker.
	Trigger   string `json:"trigger"`
	SyscallNr int64  `json:"syscall_nr"`
	// Nlink is the lower inode's link count. HardlinksBroken: the lower file had
	// other links, which now see the old data (overlay without index=on).
	Nlink           *uint32 `json:"nlink,omitempty"`
	HardlinksBroken *bool   `json:"hardlinks_broken,omitempty"`
}

// Duration is how long the copy-up stalled the caller.
func (c *CopyUp) Duration() time.Duration { return time.Duration(c.DurationNS) }

// Summary is the report's line: the duration, then every field.
func (c *CopyUp) Summary() string {
	f := FieldsOf(c)
	if c.DurationNS > 0 {
		return fmt.Sprintf("copy-up took %v: %v", c.Duration(), f)
	}
	return f.String()
}
