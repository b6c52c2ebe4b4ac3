package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// realCgroup2 returns the host's cgroup2 mount or skips: these tests create
// real cgroups and need root.
func realCgroup2(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups and call open_by_handle_at (CAP_DAC_READ_SEARCH)")
	}
	root, err := detectCgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	return root
}

// mkCgroup creates <root>/docker/<random id> and returns the id and cgroup id.
func mkCgroup(t *testing.T, root string) (string, uint64) {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	dir := filepath.Join(root, "docker", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	return id, inode(t, dir)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestRealCgroups(t *testing.T) {
	root := realCgroup2(t)
	if _, err := os.Stat(filepath.Join(root, "docker")); os.IsNotExist(err) {
		if err := os.Mkdir(filepath.Join(root, "docker"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(filepath.Join(root, "docker")) })
	}

	walked, walkedCG := mkCgroup(t, root) // exists before Start: found by the walk
	r, err := NewResolver(Options{DockerHost: "none", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if r.root != root {
		t.Fatalf("auto-detected root %q, want %q", r.root, root)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.mu.RLock()
	_, seeded := r.idx.get(walkedCG)
	r.mu.RUnlock()
	if !seeded {
		t.Fatal("walk did not index the cgroup created before Start")
	}
	if got := r.Lookup(walkedCG); got.ID != walked {
		t.Fatalf("Lookup(walked %d) = %+v, want %s", walkedCG, got, walked)
	}
	if r.handles.Load() == nil {
		t.Fatal("handle fallback not available as root")
	}

	late, lateCG := mkCgroup(t, root) // after Start, no CgroupCreated: only the handle fallback knows
	if got := r.Lookup(lateCG); got.ID != late {
		t.Fatalf("Lookup(late %d) via open_by_handle_at = %+v, want %s", lateCG, got, late)
	}
	r.mu.RLock()
	e, cached := r.idx.get(lateCG)
	r.mu.RUnlock()
	if !cached || e.ctr != late || !e.removed.IsZero() {
		t.Fatalf("fallback answer not cached as live: %+v %v", e, cached)
	}

	if got := r.Lookup(inode(t, root)); got != (Container{}) {
		t.Fatalf("root cgroup resolved to %+v", got)
	}
	// A host cgroup the walk has not seen resolves to the host via its handle.
	host := filepath.Join(root, "observer-test-host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(host)
	if got := r.Lookup(inode(t, host)); got != (Container{}) {
		t.Fatalf("host cgroup resolved to %+v", got)
	}

	// An id that no longer exists is a cached negative that expires.
	gone := filepath.Join(root, "observer-test-gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	goneCG := inode(t, gone)
	os.Remove(gone)
	if got := r.Lookup(goneCG); got != (Container{}) {
		t.Fatalf("removed cgroup resolved to %+v", got)
	}
	r.mu.RLock()
	e, cached = r.idx.get(goneCG)
	r.mu.RUnlock()
	if !cached || e.removed.IsZero() {
		t.Fatalf("negative answer not cached as removed: %+v %v", e, cached)
	}

	// Removed: what the latency sensor asks before retiring a host cgroup.
	if !r.Removed(goneCG) {
		t.Error("Removed(a cgroup the kernel no longer has) = false")
	}
	hostCG := inode(t, host)
	if r.Removed(hostCG) {
		t.Error("Removed(a live host cgroup) = true")
	}
	r.CgroupRemoved(hostCG, "observer-test-host") // the cgroup sensor's rmdir event
	if !r.Removed(hostCG) {
		t.Error("Removed after CgroupRemoved = false")
	}
	unseen := filepath.Join(root, "observer-test-unseen")
	if err := os.Mkdir(unseen, 0o755); err != nil {
		t.Fatal(err)
	}
	unseenCG := inode(t, unseen)
	os.Remove(unseen)
	if !r.Removed(unseenCG) { // never looked up while it lived
		t.Error("Removed(an id never seen, gone) = false")
	}
}
