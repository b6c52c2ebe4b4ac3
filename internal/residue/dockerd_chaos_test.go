package residue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/testenv"
)

// TestDockerdKilledMidRun is the seed scenario for real: a private dockerd is
// SIGKILLed at random moments while `docker run` sets containers up, then
// restarted. Every veth or semaphore array left behind that no running
// container owns must be reported, and nothing a running container owns.
//
// Ground truth is computed apart from the detector: a running container owns
// the host veth whose ifindex its eth0 names in /sys/class/net/eth0/iflink.
func TestDockerdKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: skipped with -short")
	}
	var dir string
	// Runs after dockerd's own cleanup (LIFO): shims orphaned by the kills outlive
	// their containerd and would otherwise stay behind with their containers.
	t.Cleanup(func() { killShims(t, dir) })
	dockerd := testenv.StartDockerd(t)
	dir = dockerd.Dir
	image := dockerd.ImportBusybox(t)
	engine, err := container.NewEngineClient(dockerd.Host)
	if err != nil {
		t.Fatal(err)
	}
	vethsBefore := hostVeths(t)
	semsBefore := semIDs(t)

	const grace = 2 * time.Second
	d := New(Options{Grace: grace, Engine: engine})
	startSemSensor(t, d) // attributes arrays, should dockerd (or anything) leak one

	// How long a whole `docker run -d` takes here, to aim kills inside it.
	start := time.Now()
	if out, err := dockerd.CLI("run", "-d", image, "sleep", "3600"); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	runTime := time.Since(start)
	t.Logf("docker run -d takes %v", runTime)

	budget := time.Now().Add(90 * time.Second)
	kills := 0
	for kills < 40 && time.Now().Before(budget) {
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dockerd.CLI("run", "-d", image, "sleep", "3600") // fails when dockerd dies under it
			}()
		}
		time.Sleep(time.Duration(rand.Int64N(int64(runTime) + 1)))
		dockerd.Kill(t)
		kills++
		wg.Wait()
		forgetZombieContainerd(t, dockerd.Dir)
		// Orphaned shims can make the new containerd miss dockerd's start
		// timeout once; a second try finds them settled.
		if err := dockerd.RestartErr(); err != nil {
			t.Logf("restart after kill %d failed, retrying: %.200s", kills, err)
			dockerd.Kill(t)
			dockerd.Restart(t)
		}
	}
	// Containers started now certainly run: none of their veths may be reported.
	for i := 0; i < 2; i++ {
		if out, err := dockerd.CLI("run", "-d", image, "sleep", "3600"); err != nil {
			t.Fatalf("docker run after the kills: %v: %s", err, out)
		}
	}

	d.Reconcile(context.Background())
	time.Sleep(grace + 100*time.Millisecond)
	d.Reconcile(context.Background())
	items := d.Residue()

	owned := ownedVeths(t, dockerd)
	now, peers := hostVethPeers(t)
	expected := map[int]string{}
	for idx, name := range now {
		if _, old := vethsBefore[idx]; !old && !owned[idx] {
			expected[idx] = name
		}
	}
	reported := map[int]Item{}
	for _, it := range items {
		if it.Resource == ResourceVeth {
			reported[int(it.Ifindex)] = it
		}
	}
	// A pair left whole in the host namespace is one object: reporting either
	// end covers both (deleting one deletes the pair).
	for idx := range expected {
		if p, ok := peers[idx]; ok {
			if _, rep := reported[p]; rep {
				delete(expected, idx)
				expected[p] = now[p]
			}
		}
	}
	falsePositives, missed := 0, 0
	for idx, it := range reported {
		if owned[idx] {
			falsePositives++
			t.Errorf("veth %s (ifindex %d) of a running container reported: %s", it.Name, idx, it.Reason)
		}
	}
	for idx, name := range expected {
		if _, ok := reported[idx]; !ok {
			missed++
			t.Errorf("leaked veth %s (ifindex %d) not reported; inventory: %+v", name, idx, d.Veths())
		}
	}
	// Semaphore arrays: overlay2 makes no udev cookies, but anything new that
	// is left must be reported (with its creator), and nothing else.
	// An array whose creator still runs (another process on this host) is not
	// residue; only the new ones whose creator is gone must be reported.
	var newSems, reportedSems int
	live := map[int32]bool{}
	for _, s := range d.Semaphores() {
		if s.Creator.Known && s.CreatorGoneAt.IsZero() {
			live[s.SemID] = true
		}
	}
	for id := range semIDs(t) {
		if !semsBefore[id] && !live[id] {
			newSems++
		}
	}
	for _, it := range items {
		if it.Resource == ResourceSem && !semsBefore[*it.SemID] {
			reportedSems++
			t.Logf("semaphore residue: %+v", it)
		}
	}
	running, _ := dockerd.CLI("ps", "-q")
	t.Logf("kills %d, veths now %d (owned by running containers %d, running containers %d), leaked veths %d, reported %d, false positives %d, missed %d; new semaphore arrays %d, reported %d",
		kills, len(now), len(owned), len(strings.Fields(running)), len(expected), len(reported), falsePositives, missed, newSems, reportedSems)
	for _, it := range reported {
		t.Logf("reported: %s %s creator=%+v", it.Name, it.Reason, it.Creator)
	}
	testenv.Result(t, map[string]any{
		"test": "dockerd_killed_mid_run", "kills": kills, "leaked_veths": len(expected), "reported_veths": len(reported),
		"false_positives": falsePositives, "missed": missed, "new_sems": newSems, "reported_sems": reportedSems,
	})
	// Leave nothing behind: the leaked veths are ours to delete.
	for _, it := range reported {
		if l, err := netlink.LinkByIndex(int(it.Ifindex)); err == nil && l.Attrs().Name == it.Name {
			netlink.LinkDel(l)
		}
	}
	if newSems != reportedSems {
		t.Errorf("new semaphore arrays %d, reported %d", newSems, reportedSems)
	}
}

func hostVeths(t *testing.T) map[int]string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, l := range links {
		if l.Type() == "veth" {
			out[l.Attrs().Index] = l.Attrs().Name
		}
	}
	return out
}

// forgetZombieContainerd waits for the containerd that died with dockerd
// (Pdeathsig) and removes its pid file when it lingers as a zombie: where
// nothing reaps orphans (no init in a container host), kill(pid, 0) still
// succeeds on the zombie, and the restarted dockerd would wait for a containerd
// that will never answer ("containerd is still running", then a start timeout).
func forgetZombieContainerd(t *testing.T, dir string) {
	pidFile := dir + "/exec/containerd/containerd.pid"
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if processZombie(uint32(pid)) || !processAlive(uint32(pid), 0) {
			os.Remove(pidFile)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("containerd %d still running after dockerd died", pid)
}

// killShims SIGKILLs the containerd shims (and their container processes)
// that served the engine under dir.
func killShims(t *testing.T, dir string) {
	if dir == "" {
		return
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), "containerd-shim") || !strings.Contains(string(cmdline), dir) {
			continue
		}
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, c := range strings.Fields(string(children)) {
			if cp, err := strconv.Atoi(c); err == nil {
				syscall.Kill(cp, syscall.SIGKILL)
			}
		}
		syscall.Kill(pid, syscall.SIGKILL)
		t.Logf("killed orphaned shim %d", pid)
	}
}

// hostVethPeers returns the veths and, for pairs whole in this namespace, each end's peer.
func hostVethPeers(t *testing.T) (map[int]string, map[int]int) {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names, peers := map[int]string{}, map[int]int{}
	for _, l := range links {
		if l.Type() == "veth" {
			names[l.Attrs().Index] = l.Attrs().Name
			if l.Attrs().NetNsID < 0 && l.Attrs().ParentIndex != 0 {
				peers[l.Attrs().Index] = l.Attrs().ParentIndex
			}
		}
	}
	return names, peers
}

func semIDs(t *testing.T) map[int32]bool {
	t.Helper()
	f, err := os.Open(SemProcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arrays, _, err := ParseSemProc(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]bool{}
	for _, a := range arrays {
		out[a.SemID] = true
	}
	return out
}

// ownedVeths asks every running container which host ifindex its eth0 pairs with.
func ownedVeths(t *testing.T, d *testenv.Dockerd) map[int]bool {
	t.Helper()
	out, err := d.CLI("ps", "-q")
	if err != nil {
		t.Fatal(err)
	}
	owned := map[int]bool{}
	for _, id := range strings.Fields(out) {
		s, err := d.CLI("exec", id, "cat", "/sys/class/net/eth0/iflink")
		if err != nil {
			t.Logf("container %s: %v", id, err)
			continue
		}
		idx, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("container %s iflink %q", id, s)
		}
		owned[idx] = true
	}
	return owned
}
