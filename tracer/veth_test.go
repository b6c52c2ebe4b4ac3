package tracer

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
)

// newNetNS makes a network namespace held only by the returned file: the
// thread that unshared it returns to this process's namespace, so closing
// the file drops the namespace's last reference and the kernel tears it down.
// (Leaving the thread to die locked is not enough: Go wedges rather than ends
// the main thread, which would then keep the namespace alive.)
func newNetNS(t *testing.T) *os.File {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare net: %w", err)}
			runtime.UnlockOSThread()
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread must not run other goroutines.
			if f != nil {
				f.Close()
			}
			ch <- result{err: fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{f, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.f
}

// TestVethNetnsTeardown is a container exiting: one end of a pair lives in a
// network namespace whose last reference goes away, and the kernel deletes
// the pair from a kworker (cleanup_net). veth_delete must say so
// (by_kernel_thread, cause netns_teardown) and name the host-side peer, which
// gets no event of its own. fentry and kprobe, in make vmtest's guests.
func TestVethNetnsTeardown(t *testing.T) {
	requireRoot(t)
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorVeth, mode, Options{})
			if tr == nil {
				return
			}
			host := fmt.Sprintf("obst%d", os.Getpid()%100000)
			inner := host + "c"
			hostLink := testenv.VethPair(t, host, inner)
			innerLink, err := netlink.LinkByName(inner)
			if err != nil {
				t.Fatal(err)
			}
			ns := newNetNS(t)
			var st unix.Stat_t
			if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if err := netlink.LinkSetNsFd(innerLink, int(ns.Fd())); err != nil {
				ns.Close()
				t.Fatalf("move %s into the new net ns: %v", inner, err)
			}
			ns.Close() // the namespace's last reference

			del := waitEvent(t, tr, func(ev event.Event) bool {
				c, ok := ev.(*event.VethChange)
				return ok && c.Type == event.TypeVethDelete && (c.Name == inner || c.Name == host)
			}).(*event.VethChange)
			js, _ := json.Marshal(del)
			if del.Name != inner || del.DevNetNS != uint32(st.Ino) {
				t.Fatalf("veth_delete %s, want device %s in the dead net ns %d", js, inner, st.Ino)
			}
			if del.PeerName != host || del.PeerIfindex != int32(hostLink.Attrs().Index) || del.PeerNetNS == 0 || del.PeerNetNS == del.DevNetNS {
				t.Fatalf("veth_delete %s, want peer %s ifindex %d in this net ns", js, host, hostLink.Attrs().Index)
			}
			if !del.ByKernelThread || del.Cause != event.VethCauseNetNSTeardown || del.PID == uint32(os.Getpid()) {
				t.Fatalf("veth_delete %s, want by_kernel_thread and cause %s", js, event.VethCauseNetNSTeardown)
			}
			if !strings.HasPrefix(del.Comm, "kworker") {
				t.Logf("deleting task is %q, not a kworker", del.Comm)
			}
			// The event comes as veth_dellink starts; the pair is unregistered after.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if _, err := netlink.LinkByName(host); err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still exists 5s after its peer's namespace died", host)
				}
			}
			t.Logf("%s", js)
		})
	}
}
