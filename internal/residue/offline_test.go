package residue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/event"
)

// liveState runs a fake live detector into a state with residue (two sem
// arrays, one veth) and returns its snapshot sections, as the daemon's flight
// recorder writes them, and the residue events it published.
func liveState(t *testing.T) (map[string]json.RawMessage, []*event.Residue, time.Time) {
	t.Helper()
	sem := "key semid perms nsems uid gid cuid cgid otime ctime\n" +
		" 223150081 9 600 1 0 0 0 0 0 1795974690\n" + // 0x0d4d0001
		" 1234 10 600 2 0 0 0 0 0 1795974690\n"
	links := []netlink.Link{veth(20, "veth1234", 0, -1, 0)}
	d, now, _ := fakeDetector(t, sem, func() ([]netlink.Link, error) { return links, nil })
	pub := &collected{}
	d.opts.Publish = pub.publish
	d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 42, Comm: "dockerd", IPCNS: semOf(d).ns}, SemID: 9, Key: 0x0d4d0001, NSems: 1, Flags: 0o3600})
	d.Reconcile(context.Background())
	*now = now.Add(2 * time.Minute)
	d.Reconcile(context.Background())
	if len(pub.evs) != 3 {
		t.Fatalf("live detector published %d residue events, want 3: %+v", len(pub.evs), d.Residue())
	}
	sections := map[string]json.RawMessage{}
	for name, v := range map[string]any{SectionSemaphores: d.Semaphores(), SectionVeths: d.Veths(), SectionResidue: d.Residue()} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sections[name] = raw
	}
	return sections, pub.evs, *now
}

// offlineDetector can reach nothing of this machine: every kernel source fails the test.
func offlineDetector(t *testing.T) *Detector {
	never := func(what string) { t.Helper(); t.Fatalf("offline detector read %s", what) }
	d := New(Options{
		Offline: true,
		Publish: func(ev event.Event) bool { t.Fatalf("offline detector published %+v", ev); return false },
	})
	semOf(d).readProc = func() ([]byte, error) { never("/proc/sysvipc/sem"); return nil, nil }
	vethOf(d).listLinks = func() ([]netlink.Link, error) { never("rtnetlink"); return nil, nil }
	setLiveNamespaces(d, func(string) map[uint32]uint32 { never("/proc namespaces"); return nil })
	semOf(d).processAlive = func(uint32, uint64) bool { never("/proc/<pid>"); return false }
	return d
}

// residueMetrics prints the residue gauges as "name label=value... value" lines.
func residueMetrics(t *testing.T, d *Detector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() != "observer_sem_residue_arrays" && mf.GetName() != "observer_veth_residue" {
			continue
		}
		for _, m := range mf.GetMetric() {
			b.WriteString(mf.GetName())
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, " %s=%s", l.GetName(), l.GetValue())
			}
			fmt.Fprintf(&b, " %v\n", m.GetGauge().GetValue())
		}
	}
	return b.String()
}

// TestOfflineFromSnapshotAndEvents: a replay's detector shows the captured
// residue (from the snapshot), follows the replayed events, and never scans.
func TestOfflineFromSnapshotAndEvents(t *testing.T) {
	sections, evs, taken := liveState(t)
	d := offlineDetector(t)
	d.Run(context.Background()) // returns at once: nothing to scan
	d.Reconcile(context.Background())
	if n := testutil.CollectAndCount(d); n != 0 {
		t.Fatalf("%d metrics before any captured state; want none rather than zeros that look measured", n)
	}

	// The events first (the live order), then the snapshot taken after them.
	for _, ev := range evs {
		d.Observe(ev)
	}
	if got := len(d.Residue()); got != 3 {
		t.Fatalf("residue from events: %d items, want 3", got)
	}
	d.ApplySnapshot(taken, sections)
	r := d.Residue()
	if len(r) != 3 || r[0].Resource != ResourceSem || *r[0].SemID != 9 || r[0].Creator.PID != 42 || r[0].Creator.Comm != "dockerd" ||
		r[0].Kind != KindDMUdevCookie || r[0].Remove != "ipcrm -s 9" || r[2].Name != "veth1234" {
		t.Fatalf("residue after the snapshot: %+v", r)
	}
	if r[0].Age != "2m0s" {
		t.Errorf("age %q: want it at the capture's time (2m0s), not at the replay's", r[0].Age)
	}
	if len(d.Semaphores()) != 2 || len(d.Veths()) != 1 || d.Semaphores()[0].Key != "0x0d4d0001" {
		t.Fatalf("inventories %+v %+v", d.Semaphores(), d.Veths())
	}
	want := "observer_sem_residue_arrays kind=dm_udev_cookie 1\nobserver_sem_residue_arrays kind=other 1\nobserver_veth_residue 1\n"
	if got := residueMetrics(t, d); got != want {
		t.Fatalf("metrics:\n%s\nwant:\n%s", got, want)
	}
	if rep := d.Report(); !rep.Offline || !rep.Time.Equal(taken) {
		t.Errorf("report offline=%v time=%v, want true and the capture's %v", rep.Offline, rep.Time, taken)
	}

	// A residue event older than the snapshot is already in it; a re-create of
	// a known array (IPC_CREAT lookup) changes nothing.
	d.Observe(evs[0])
	ns := r[0].IPCNS
	d.Observe(&event.SemCreate{Header: event.Header{Time: taken, PID: 77, Comm: "other", IPCNS: ns}, SemID: 9, Key: 0x0d4d0001, Flags: 0o1600})
	if s := d.Semaphores(); s[0].Creator.PID != 42 || s[0].CreatorGoneAt.IsZero() {
		t.Fatalf("lookup changed the array: %+v", s[0])
	}
	// Replayed removals take items away.
	d.Observe(&event.SemRemove{Header: event.Header{Time: taken.Add(time.Second), IPCNS: ns}, SemID: 9})
	d.Observe(&event.VethChange{Header: event.Header{Time: taken.Add(time.Second), Type: event.TypeVethDelete}, Name: "veth1234", Ifindex: 20})
	if r := d.Residue(); len(r) != 1 || *r[0].SemID != 10 || len(d.Veths()) != 0 {
		t.Fatalf("after sem_remove and veth_delete: %+v %+v", r, d.Veths())
	}
	// An older snapshot (read out of order) does not roll the state back.
	d.ApplySnapshot(taken.Add(-time.Minute), sections)
	if len(d.Residue()) != 1 {
		t.Fatal("an older snapshot was applied")
	}
	// A damaged section is reported, the others still apply.
	bad := map[string]json.RawMessage{SectionSemaphores: json.RawMessage(`{`), SectionResidue: sections[SectionResidue]}
	d.ApplySnapshot(taken.Add(time.Minute), bad)
	if len(d.Residue()) != 3 || !strings.Contains(d.Report().Errors["capture"], `"semaphores"`) {
		t.Fatalf("residue %d errors %v", len(d.Residue()), d.Report().Errors)
	}
}
