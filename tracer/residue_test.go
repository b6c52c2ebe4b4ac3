package tracer

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

func semget(key, nsems, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), uintptr(nsems), uintptr(flags))
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

func semRemove(id int) error {
	_, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// TestSemCreateRemove creates and removes a real System V semaphore array and
// expects both records with this process as the actor.
func TestSemCreateRemove(t *testing.T) {
	requireRoot(t)
	tr := startSensor(t, SensorSem, ModeTracepoint, Options{})
	if tr == nil {
		return
	}
	const key = 0x0d4d7e57
	id, err := semget(key, 1, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatalf("semget: %v", err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			semRemove(id)
		}
	})
	// A lookup without IPC_CREAT creates nothing and must not be reported.
	if _, err := semget(key, 1, 0); err != nil {
		t.Fatalf("semget lookup: %v", err)
	}
	ev := waitEvent(t, tr, func(ev event.Event) bool {
		c, ok := ev.(*event.SemCreate)
		return ok && c.SemID == int32(id)
	}).(*event.SemCreate)
	if ev.Key != key || ev.NSems != 1 || ev.PID != uint32(os.Getpid()) || ev.StartBoottimeNs == 0 || ev.IPCNS == 0 {
		t.Fatalf("sem_create = %+v, want key %#x nsems 1 pid %d with start time and ipc ns", ev, key, os.Getpid())
	}
	if ev.Flags&unix.IPC_EXCL == 0 {
		t.Fatalf("flags %#o lack IPC_EXCL", ev.Flags)
	}
	// A failed IPC_RMID (bad id) must not be reported; the real one must.
	semRemove(0x7ffffff0)
	if err := semRemove(id); err != nil {
		t.Fatalf("semctl IPC_RMID: %v", err)
	}
	removed = true
	rm := waitEvent(t, tr, func(ev event.Event) bool {
		_, ok := ev.(*event.SemRemove)
		return ok
	}).(*event.SemRemove)
	if rm.SemID != int32(id) || rm.PID != uint32(os.Getpid()) {
		t.Fatalf("sem_remove = %+v, want semid %d by pid %d", rm, id, os.Getpid())
	}
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
			la := netlink.NewLinkAttrs()
			la.Name = name
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: name + "p"}); err != nil {
				t.Fatalf("create veth: %v", err)
			}
			link, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			deleted := false
			t.Cleanup(func() {
				if !deleted {
					netlink.LinkDel(link)
				}
			})
			ev := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethCreate && c.Name == name
			}).(*event.VethChange)
			if ev.PID != uint32(os.Getpid()) || ev.Ifindex != int32(link.Attrs().Index) || ev.DevNetNS == 0 {
				t.Fatalf("veth_create = %+v, want pid %d ifindex %d", ev, os.Getpid(), link.Attrs().Index)
			}
			if err := netlink.LinkDel(link); err != nil {
				t.Fatal(err)
			}
			deleted = true
			del := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethDelete
			}).(*event.VethChange)
			if del.PID != uint32(os.Getpid()) || (del.Name != name && del.Name != name+"p") {
				t.Fatalf("veth_delete = %+v, want pid %d name %s", del, os.Getpid(), name)
			}
		})
	}
}
