package testenv

import (
	"os"
	"testing"
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
