package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileidKernfs is the kernel's FILEID_KERNFS handle type; its payload is the
// 8-byte kernfs node id, which on cgroup2 is the cgroup id.
const fileidKernfs = 0xfe

// handleResolver turns a cgroup id into its path with open_by_handle_at on the
// cgroup2 mount, so a miss needs neither a tree walk nor /proc/<pid>.
type handleResolver struct {
	mnt  *os.File
	root string
}

func openHandleResolver(root string) (*handleResolver, error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open cgroup2 mount: %w", err)
	}
	return &handleResolver{mnt: f, root: strings.TrimSuffix(root, "/")}, nil
}

func (h *handleResolver) close() error { return h.mnt.Close() }

// path returns the cgroup's path relative to the hierarchy root and whether
// the cgroup has already been removed.
func (h *handleResolver) path(id uint64) (rel string, removed bool, err error) {
	fh := unix.NewFileHandle(fileidKernfs, binary.NativeEndian.AppendUint64(nil, id))
	rc, err := h.mnt.SyscallConn()
	if err != nil {
		return "", false, err
	}
	fd := -1
	var openErr error
	// Control keeps the mount fd from being closed (and its number reused) meanwhile.
	if err := rc.Control(func(mfd uintptr) {
		fd, openErr = unix.OpenByHandleAt(int(mfd), fh, unix.O_PATH|unix.O_CLOEXEC)
	}); err != nil {
		return "", false, fmt.Errorf("%w: %v", os.ErrClosed, err)
	}
	if openErr != nil {
		return "", false, openErr
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", false, err
	}
	p, removed = strings.CutSuffix(p, " (deleted)")
	if rel, ok := strings.CutPrefix(p, h.root); ok && (rel == "" || rel[0] == '/') {
		p = rel
	}
	if p == "" {
		p = "/"
	}
	return p, removed, nil
}

// handleGone reports errors meaning the cgroup no longer exists.
func handleGone(err error) bool {
	return errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT)
}

// handleUnsupported reports errors that will repeat for every id: no
// CAP_DAC_READ_SEARCH, a kernel without kernfs export ops, or a closed mount.
func handleUnsupported(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EBADF) || errors.Is(err, os.ErrClosed)
}

// isCgroup2 reports whether path is on a cgroup2 file system.
func isCgroup2(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC, nil
}
