// Package probe exists only to prove the QEMU test tier: it checks that the
// guest has what the sensor tests rely on and that a real container runs.
package probe

import (
	"os"
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/testenv"
)

func requireVM(t *testing.T) string {
	t.Helper()
	k := testenv.VMKernel()
	if k == "" {
		t.Skip("skipping: runs only in the QEMU tier (make vmtest)")
	}
	return k
}

func TestGuestKernelFeatures(t *testing.T) {
	k := requireVM(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Errorf("no kernel BTF: %v", err)
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fs), "overlay") {
		t.Errorf("overlay not in /proc/filesystems:\n%s", fs)
	}
	for _, dir := range []string{"/sys/kernel/tracing/events", "/sys/fs/bpf", "/sys/fs/cgroup/cgroup.controllers"} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("guest mount missing: %v", err)
		}
	}
	if lsm, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil {
		t.Logf("LSMs: %s", lsm)
	}
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	testenv.Result(t, map[string]any{"probe": "kernel", "name": k, "release": strings.TrimSpace(string(release))})
}

func TestGuestContainer(t *testing.T) {
	requireVM(t)
	res := testenv.RunContainer(t, testenv.ContainerOptions{
		Lower: map[string]string{"data/src/": "", "data/src/f": "x\n"},
	}, "cat /proc/self/cgroup && mv /data/src /data/dst && cat /data/dst/f")
	if res.ExitCode != 0 {
		t.Fatalf("container exit %d:\n%s", res.ExitCode, res.Output)
	}
	if !strings.Contains(res.Output, "/docker/"+res.ID) {
		t.Errorf("cgroup path lacks container id %s:\n%s", res.ID, res.Output)
	}
	testenv.Result(t, map[string]any{"probe": "container", "ok": true})
}
