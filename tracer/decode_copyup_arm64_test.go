package tracer

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The trigger names come from the arm64 table (no open, rename, mkdir...: the
// *at syscalls carry them); check them against x/sys, so a table wrong for
// this architecture cannot name the wrong syscall.
func TestCopyUpSyscallNames(t *testing.T) {
	checkSyscallNames(t, map[string]int64{
		"read": unix.SYS_READ, "write": unix.SYS_WRITE, "mmap": unix.SYS_MMAP,
		"pread64": unix.SYS_PREAD64, "pwrite64": unix.SYS_PWRITE64, "sendfile": unix.SYS_SENDFILE,
		"execve": unix.SYS_EXECVE, "truncate": unix.SYS_TRUNCATE, "ftruncate": unix.SYS_FTRUNCATE,
		"fchmod": unix.SYS_FCHMOD, "fchown": unix.SYS_FCHOWN, "setxattr": unix.SYS_SETXATTR,
		"lsetxattr": unix.SYS_LSETXATTR, "fsetxattr": unix.SYS_FSETXATTR, "removexattr": unix.SYS_REMOVEXATTR,
		"openat": unix.SYS_OPENAT, "mkdirat": unix.SYS_MKDIRAT, "mknodat": unix.SYS_MKNODAT,
		"fchownat": unix.SYS_FCHOWNAT, "unlinkat": unix.SYS_UNLINKAT,
		"renameat": unix.SYS_RENAMEAT, "linkat": unix.SYS_LINKAT, "symlinkat": unix.SYS_SYMLINKAT,
		"fchmodat": unix.SYS_FCHMODAT, "splice": unix.SYS_SPLICE, "utimensat": unix.SYS_UTIMENSAT,
		"fallocate": unix.SYS_FALLOCATE, "renameat2": unix.SYS_RENAMEAT2, "execveat": unix.SYS_EXECVEAT,
		"copy_file_range": unix.SYS_COPY_FILE_RANGE, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"openat2": unix.SYS_OPENAT2, "fchmodat2": unix.SYS_FCHMODAT2,
	})
}
