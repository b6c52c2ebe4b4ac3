package tracer

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
)

// semModes are the sem sensor's modes: every test runs in each one the kernel offers.
var semModes = []Mode{ModeFentry, ModeKprobe, ModeTailCall, ModeTracepoint}

// TestSemCreateRemove creates and removes a real System V semaphore array and
// expects both records with this process as the actor, in every mode.
func TestSemCreateRemove(t *testing.T) {
	requireRoot(t)
	for _, mode := range semModes {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSem, mode, modeOptions(mode, Options{}))
			if tr == nil {
				return
			}
			testSemCreateRemove(t, tr)
		})
	}
}

func testSemCreateRemove(t *testing.T, tr *Tracer) {
	const key = 0x0d4d7e57
	id, err := testenv.Semget(key, 1, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatalf("semget: %v", err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			testenv.SemRemove(id)
		}
	})
	// A lookup without IPC_CREAT creates nothing and must not be reported.
	if _, err := testenv.Semget(key, 1, 0); err != nil {
		t.Fatalf("semget lookup: %v", err)
	}
	ev := waitEvent(t, tr, func(ev event.Event) bool {
		c, ok := ev.(*event.SemCreate)
		return ok && c.SemID == int32(id)
	}).(*event.SemCreate)
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/ipc", &ns); err != nil {
		t.Fatal(err)
	}
	if ev.Key != key || ev.NSems != 1 || ev.PID != uint32(os.Getpid()) || ev.StartBoottimeNs == 0 || ev.IPCNS != uint32(ns.Ino) {
		t.Fatalf("sem_create = %+v, want key %#x nsems 1 pid %d with start time and ipc ns %d", ev, key, os.Getpid(), ns.Ino)
	}
	if ev.Flags&unix.IPC_EXCL == 0 {
		t.Fatalf("flags %#o lack IPC_EXCL", ev.Flags)
	}
	// A failed IPC_RMID (bad id) must not be reported; the real one must.
	testenv.SemRemove(0x7ffffff0)
	if err := testenv.SemRemove(id); err != nil {
		t.Fatalf("semctl IPC_RMID: %v", err)
	}
	removed = true
	rm := waitEvent(t, tr, func(ev event.Event) bool {
		_, ok := ev.(*event.SemRemove)
		return ok
	}).(*event.SemRemove)
	if rm.SemID != int32(id) || rm.PID != uint32(os.Getpid()) || rm.IPCNS != uint32(ns.Ino) {
		t.Fatalf("sem_remove = %+v, want semid %d by pid %d in ipc ns %d", rm, id, os.Getpid(), ns.Ino)
	}
}

// TestSemNamespaceTeardown leaves an array in a private IPC namespace and lets
// the namespace die with its only process: the kernel frees the array (a
// kworker runs free_ipcs -> freeary) and the sensor must report it removed, in
// that namespace. Only the function hooks see this; the syscall tracepoints
// cannot. (A process, not a locked thread: Go never ends its main thread, so a
// goroutine that happened to run there would keep the namespace alive.)
func TestSemNamespaceTeardown(t *testing.T) {
	requireRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSem, mode, Options{})
			if tr == nil {
				return
			}
			cmd := exec.Command(exe, "-test.run=^TestSemNamespaceHelperProcess$")
			cmd.Env = append(os.Environ(), semHelperEnv+"=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWIPC}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v: %s", err, out)
			}
			var ns uint32
			var semid int32
			if _, err := fmt.Sscanf(string(out), "sem-helper ipc_ns=%d semid=%d", &ns, &semid); err != nil {
				t.Fatalf("helper output %q: %v", out, err)
			}
			c := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.SemCreate)
				return ok && c.IPCNS == ns
			}).(*event.SemCreate)
			if c.SemID != semid || c.NSems != 2 || c.Key != 0 || c.PID != uint32(cmd.Process.Pid) {
				t.Fatalf("sem_create = %+v, want semid %d nsems 2 key 0 pid %d in ipc ns %d", c, semid, cmd.Process.Pid, ns)
			}
			rm := waitEvent(t, tr, func(ev event.Event) bool {
				r, ok := ev.(*event.SemRemove)
				return ok && r.IPCNS == ns
			}).(*event.SemRemove)
			if rm.SemID != semid {
				t.Fatalf("sem_remove = %+v, want semid %d in ipc ns %d", rm, semid, ns)
			}
			t.Logf("array %d of ipc ns %d removed by %s (pid %d) when the namespace died", rm.SemID, ns, rm.Comm, rm.PID)
		})
	}
}

const semHelperEnv = "OBSERVER_TEST_SEM_HELPER"

// TestSemNamespaceHelperProcess is not a test: TestSemNamespaceTeardown runs
// the test binary as a helper in a new IPC namespace, which lands here, makes
// an array, prints its namespace and id and exits without removing it.
func TestSemNamespaceHelperProcess(t *testing.T) {
	if os.Getenv(semHelperEnv) == "" {
		t.Skip("helper process of TestSemNamespaceTeardown")
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/ipc", &st); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	id, err := testenv.Semget(unix.IPC_PRIVATE, 2, unix.IPC_CREAT|0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "semget:", err)
		os.Exit(1)
	}
	fmt.Printf("sem-helper ipc_ns=%d semid=%d\n", st.Ino, id)
	os.Exit(0)
}

// TestVethCreateDelete creates a veth pair through rtnetlink and expects
// veth_create naming this process in every mode the kernel offers (fentry and
// kprobe in the QEMU kernels; neither on the build host, which must say why).
func TestVethCreateDelete(t *testing.T) {
	requireRoot(t)
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorVeth, mode, Options{})
			if tr == nil {
				return
			}
			name := fmt.Sprintf("obsv%d", os.Getpid()%100000)
			link := testenv.VethPair(t, name, name+"p")
			ev := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethCreate && c.Name == name
			}).(*event.VethChange)
			peer, err := netlink.LinkByName(name + "p")
			if err != nil {
				t.Fatal(err)
			}
			if ev.PID != uint32(os.Getpid()) || ev.Ifindex != int32(link.Attrs().Index) || ev.DevNetNS == 0 {
				t.Fatalf("veth_create = %+v, want pid %d ifindex %d", ev, os.Getpid(), link.Attrs().Index)
			}
			if ev.PeerName != name+"p" || ev.PeerIfindex != int32(peer.Attrs().Index) || ev.PeerNetNS != ev.DevNetNS || ev.ByKernelThread {
				t.Fatalf("veth_create = %+v, want peer %sp ifindex %d in net ns %d, by this process", ev, name, peer.Attrs().Index, ev.DevNetNS)
			}
			if err := netlink.LinkDel(link); err != nil {
				t.Fatal(err)
			}
			del := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethDelete && c.Name == name
			}).(*event.VethChange)
			if del.PID != uint32(os.Getpid()) || del.ByKernelThread || del.Cause != "" {
				t.Fatalf("veth_delete = %+v, want pid %d and no cause", del, os.Getpid())
			}
			if del.PeerName != name+"p" || del.PeerIfindex != int32(peer.Attrs().Index) {
				t.Fatalf("veth_delete = %+v, want peer %sp ifindex %d", del, name, peer.Attrs().Index)
			}
		})
	}
}
