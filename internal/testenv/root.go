package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test when the process is not root: kernel-facing
// tests mount overlays, create cgroups and load BPF, none of which work
// without privileges, and a skip with a reason is more honest than a failure.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: needs root (euid is %d); run as root or via `make vmtest`", os.Geteuid())
	}
}

// VMKernel returns the kernel name from the vmtest matrix (e.g. "6.1") when
// the test runs inside the QEMU tier, and "" on the host.
func VMKernel() string {
	return os.Getenv(EnvVMKernel)
}

// EnvVMKernel is set by the VM guest's /init for every test binary it runs;
// its value is the kernel's name column in testdata/vmtest/kernels.txt.
const EnvVMKernel = "OBSERVER_VM_KERNEL"

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted (on hybrid
// hosts /sys/fs/cgroup is a tmpfs and v2 sits in unified/), or skips.
func Cgroup2Mount(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var fs unix.Statfs_t
		if unix.Statfs(p, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// SmallTmpfs mounts a tmpfs of the given size (e.g. "64k") on dir, unmounted
// when the test ends: a real file system that fills up, for the full-disk
// tests. It requires root; as root a failed mount fails the test.
func SmallTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	RequireRoot(t)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}
