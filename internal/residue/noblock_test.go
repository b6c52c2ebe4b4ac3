package residue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/event"
)

// TestObserveDoesNotWaitForScan: a scan stuck in any of its kernel reads
// (sysvipc, the link dump, the /proc walk, a creator's stat, a netns lookup)
// holds no lock the pipeline needs: Observe, the inventories, /residue and
// /metrics all answer meanwhile, and what Observe recorded survives the merge.
func TestObserveDoesNotWaitForScan(t *testing.T) {
	for _, hook := range []string{"readSemProc", "listLinks", "liveNamespaces", "processAlive", "netnsID"} {
		t.Run(hook, func(t *testing.T) {
			sem := "key semid perms nsems uid gid cuid cgid otime ctime\n 5 1 600 1 0 0 0 0 0 1795974690\n"
			links := []netlink.Link{veth(13, "vethx", 5, 1, 0)} // peer in netns id 1
			d, now, _ := fakeDetector(t, sem, func() ([]netlink.Link, error) { return links, nil })
			setLiveNamespaces(d, func(string) map[uint32]uint32 { return map[uint32]uint32{1001: 101, 777: 102} })
			vethOf(d).netnsID = func(string) (int, error) { return 1, nil }
			semOf(d).processAlive = func(uint32, uint64) bool { return true }
			// Inventory entries whose checks the scan makes: a known creator in the
			// observer's namespace, an array in another namespace.
			d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 42, Comm: "dmsetup", IPCNS: semOf(d).ns}, SemID: 1, Key: 5, Flags: 0o3600})
			d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 43, Comm: "app", IPCNS: 777}, SemID: 3, Key: 6, Flags: 0o3600})
			d.Reconcile(context.Background())

			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			block := func() {
				once.Do(func() { close(entered) })
				<-release
			}
			switch hook {
			case "readSemProc":
				read := semOf(d).readProc
				semOf(d).readProc = func() ([]byte, error) { block(); return read() }
			case "listLinks":
				vethOf(d).listLinks = func() ([]netlink.Link, error) { block(); return links, nil }
			case "liveNamespaces":
				live := semOf(d).liveNamespaces
				setLiveNamespaces(d, func(kind string) map[uint32]uint32 { block(); return live(kind) })
			case "processAlive":
				semOf(d).processAlive = func(uint32, uint64) bool { block(); return true }
			case "netnsID":
				vethOf(d).netnsID = func(string) (int, error) { block(); return 1, nil }
			}
			scanned := make(chan struct{})
			go func() { defer close(scanned); d.Reconcile(context.Background()) }()
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				t.Fatalf("the scan never called %s", hook)
			}

			answered := make(chan struct{})
			go func() {
				defer close(answered)
				// Created after the scan began: the merge must keep it.
				d.Observe(&event.SemCreate{Header: event.Header{Time: now.Add(time.Second), PID: 44, Comm: "dmsetup", IPCNS: semOf(d).ns}, SemID: 2, Key: 7, Flags: 0o3600})
				d.Observe(&event.SemRemove{Header: event.Header{Time: now.Add(time.Second), IPCNS: semOf(d).ns}, SemID: 99})
				d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethCreate, PID: 9, Comm: "dockerd"}, Name: "vethy", Ifindex: 14, DevNetNS: vethOf(d).ns})
				d.Semaphores()
				d.Veths()
				d.Report()
				testutil.CollectAndCount(d)
			}()
			select {
			case <-answered:
			case <-time.After(30 * time.Second):
				close(release)
				t.Fatalf("Observe or a reader waited for the scan blocked in %s", hook)
			}
			close(release)
			<-scanned
			ids := map[int32]bool{}
			for _, s := range d.Semaphores() {
				ids[s.SemID] = true
			}
			if !ids[1] || !ids[2] || !ids[3] {
				t.Fatalf("inventory after the scan %+v; want arrays 1, 2 (observed mid-scan) and 3", d.Semaphores())
			}
		})
	}
}

// Since scans read without the lock, an object removed after the scan read
// it (its remove event handled while the scan runs) must not come back from
// the scan's stale view as an unknown-creator entry.
func TestRemovedDuringScanStaysRemoved(t *testing.T) {
	sem := "key semid perms nsems uid gid cuid cgid otime ctime\n 5 1 600 1 0 0 0 0 0 1795974690\n"
	links := []netlink.Link{veth(13, "vethx", 0, -1, 0)}
	d, now, _ := fakeDetector(t, sem, func() ([]netlink.Link, error) { return links, nil })
	d.Reconcile(context.Background())
	if len(d.Semaphores()) != 1 || len(d.Veths()) != 1 {
		t.Fatalf("before: %+v %+v", d.Semaphores(), d.Veths())
	}
	entered, release := make(chan struct{}), make(chan struct{})
	vethOf(d).listLinks = func() ([]netlink.Link, error) { close(entered); <-release; return links, nil }
	scanned := make(chan struct{})
	go func() { defer close(scanned); d.Reconcile(context.Background()) }()
	<-entered // sysvipc read already: it shows array 1; the dump shows vethx
	d.Observe(&event.SemRemove{Header: event.Header{Time: *now, IPCNS: semOf(d).ns}, SemID: 1})
	d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethDelete}, Name: "vethx", Ifindex: 13, DevNetNS: vethOf(d).ns})
	close(release)
	<-scanned
	if len(d.Semaphores()) != 0 || len(d.Veths()) != 0 {
		t.Fatalf("removed mid-scan, yet back: %+v %+v", d.Semaphores(), d.Veths())
	}
}

// A residue event the publisher refuses (the pipeline's inject queue full) is
// not marked reported: the next scan offers it again, until it is taken once.
func TestRefusedResidueEventRetried(t *testing.T) {
	sem := "key semid perms nsems uid gid cuid cgid otime ctime\n 223150081 9 600 1 0 0 0 0 0 1795974690\n"
	d, _, _ := fakeDetector(t, sem, func() ([]netlink.Link, error) { return []netlink.Link{veth(10, "vethgone", 0, -1, 0)}, nil })
	var offered []string
	accept := false
	d.opts.Publish = func(ev event.Event) bool {
		r := ev.(*event.Residue)
		offered = append(offered, r.Resource)
		return accept
	}
	d.Reconcile(context.Background()) // the veth's grace starts; the array is already old
	if len(offered) != 1 || offered[0] != ResourceSem {
		t.Fatalf("first scan offered %v, want the array", offered)
	}
	d.Reconcile(context.Background())
	if len(offered) != 2 {
		t.Fatalf("refused event not offered again: %v", offered)
	}
	accept = true
	d.Reconcile(context.Background())
	d.Reconcile(context.Background())
	if len(offered) != 3 {
		t.Fatalf("offers %v; want the array once more after the refusals, then never", offered)
	}
}
