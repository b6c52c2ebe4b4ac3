package tracer

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The trigger names come from the x86-64 table; check them against x/sys, so
// a table wrong for this architecture cannot name the wrong syscall.
func TestCopyUpSyscallNames(t *testing.T) {
	checkSyscallNames(t, map[string]int64{
		"read": unix.SYS_READ, "write": unix.SYS_WRITE, "open": unix.SYS_OPEN, "mmap": unix.SYS_MMAP,
		"pread64": unix.SYS_PREAD64, "pwrite64": unix.SYS_PWRITE64, "sendfile": unix.SYS_SENDFILE,
		"execve": unix.SYS_EXECVE, "truncate": unix.SYS_TRUNCATE, "ftruncate": unix.SYS_FTRUNCATE,
		"rename": unix.SYS_RENAME, "mkdir": unix.SYS_MKDIR, "rmdir": unix.SYS_RMDIR, "creat": unix.SYS_CREAT,
		"link": unix.SYS_LINK, "unlink": unix.SYS_UNLINK, "symlink": unix.SYS_SYMLINK, "chmod": unix.SYS_CHMOD,
		"fchmod": unix.SYS_FCHMOD, "chown": unix.SYS_CHOWN, "fchown": unix.SYS_FCHOWN, "lchown": unix.SYS_LCHOWN,
		"utime": unix.SYS_UTIME, "mknod": unix.SYS_MKNOD, "setxattr": unix.SYS_SETXATTR,
		"lsetxattr": unix.SYS_LSETXATTR, "fsetxattr": unix.SYS_FSETXATTR, "removexattr": unix.SYS_REMOVEXATTR,
		"lremovexattr": unix.SYS_LREMOVEXATTR, "fremovexattr": unix.SYS_FREMOVEXATTR, "utimes": unix.SYS_UTIMES,
		"openat": unix.SYS_OPENAT, "mkdirat": unix.SYS_MKDIRAT, "mknodat": unix.SYS_MKNODAT,
		"fchownat": unix.SYS_FCHOWNAT, "futimesat": unix.SYS_FUTIMESAT, "unlinkat": unix.SYS_UNLINKAT,
		"renameat": unix.SYS_RENAMEAT, "linkat": unix.SYS_LINKAT, "symlinkat": unix.SYS_SYMLINKAT,
		"fchmodat": unix.SYS_FCHMODAT, "splice": unix.SYS_SPLICE, "utimensat": unix.SYS_UTIMENSAT,
		"fallocate": unix.SYS_FALLOCATE, "renameat2": unix.SYS_RENAMEAT2, "execveat": unix.SYS_EXECVEAT,
		"copy_file_range": unix.SYS_COPY_FILE_RANGE, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"openat2": unix.SYS_OPENAT2, "fchmodat2": unix.SYS_FCHMODAT2,
	})
}
