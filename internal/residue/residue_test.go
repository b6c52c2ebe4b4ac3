package residue

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/event"
)

func TestParseSemProcRealSample(t *testing.T) {
	data, err := os.ReadFile("../../testdata/sysvipc/sem")
	if err != nil {
		t.Fatal(err)
	}
	arrays, bad, err := ParseSemProc(bytes.NewReader(data))
	if err != nil || len(bad) != 0 {
		t.Fatalf("err %v bad %v", err, bad)
	}
	if len(arrays) != 4 {
		t.Fatalf("got %d arrays: %+v", len(arrays), arrays)
	}
	a := arrays[0]
	if a.SemID != 1 || FormatKey(a.Key) != "0x0d4d1a2b" || SemKind(a.Key) != KindDMUdevCookie || a.NSems != 1 || a.Perms != 0o600 || a.CTime.Unix() != 1795974690 || !a.OTime.IsZero() {
		t.Fatalf("first array %+v", a)
	}
	if SemKind(arrays[2].Key) != KindOther || arrays[2].NSems != 4 || arrays[3].Key != 0 {
		t.Fatalf("arrays %+v", arrays[2:])
	}
}

func TestParseSemProcOddLines(t *testing.T) {
	data, err := os.ReadFile("../../testdata/sysvipc/sem-odd")
	if err != nil {
		t.Fatal(err)
	}
	arrays, bad, err := ParseSemProc(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Extra column ignored; a negative key (above 0x7fffffff) kept; garbage,
	// a bad semid and a short line each reported once.
	if len(arrays) != 3 || len(bad) != 3 {
		t.Fatalf("arrays %+v bad %q", arrays, bad)
	}
	if FormatKey(arrays[1].Key) != "0xdeadbeef" || arrays[1].SemID != 42 || arrays[1].OTime.IsZero() {
		t.Fatalf("negative key line: %+v", arrays[1])
	}
	if arrays[2].SemID != 65536 || arrays[2].UID != 1000 {
		t.Fatalf("%+v", arrays[2])
	}
	for _, b := range bad {
		if !strings.HasPrefix(b, "line ") {
			t.Fatalf("bad line message %q does not say where", b)
		}
	}
}

func TestParseSemProcHeaderless(t *testing.T) {
	arrays, bad, err := ParseSemProc(strings.NewReader(" 5 7 600 1 0 0 0 0 0 100\n"))
	if err != nil || len(bad) != 0 || len(arrays) != 1 || arrays[0].SemID != 7 || arrays[0].CTime.Unix() != 100 {
		t.Fatalf("%+v %v %v", arrays, bad, err)
	}
	if _, _, err := ParseSemProc(strings.NewReader("key perms\n1 600\n")); err == nil {
		t.Fatal("a header without semid must be an error")
	}
	if _, _, err := ParseSemProc(strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
}

func TestParseSemLimits(t *testing.T) {
	l, err := ParseSemLimits("32000\t1024000000\t500\t32000\n")
	if err != nil || l.SEMMNI != 32000 || l.SEMMSL != 32000 {
		t.Fatalf("%+v %v", l, err)
	}
	for _, s := range []string{"", "1 2 3", "a b c d"} {
		if _, err := ParseSemLimits(s); err == nil {
			t.Fatalf("%q accepted", s)
		}
	}
}

// fakeDetector has every kernel source replaced.
func fakeDetector(t *testing.T, sem string, links func() ([]netlink.Link, error)) (*Detector, *time.Time, *bytes.Buffer) {
	t.Helper()
	now := time.Unix(1795974690, 0).Add(time.Hour)
	var logs bytes.Buffer
	d := New(Options{Grace: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d.src.(*live).clock = func() time.Time { return now }
	s, v := semOf(d), vethOf(d)
	s.readProc = func() ([]byte, error) { return []byte(sem), nil }
	s.processAlive = func(uint32, uint64) bool { return false }
	v.listLinks = links
	v.netnsID = func(string) (int, error) { return -1, errors.New("no such process") }
	v.containerOf = func(uint32) string { return "" }
	setLiveNamespaces(d, func(string) map[uint32]uint32 { return map[uint32]uint32{} })
	return d, &now, &logs
}

func semOf(d *Detector) *semResource   { return d.resource(ResourceSem).(*semResource) }
func vethOf(d *Detector) *vethResource { return d.resource(ResourceVeth).(*vethResource) }

// setLiveNamespaces replaces the /proc walk both resources make.
func setLiveNamespaces(d *Detector, f func(kind string) map[uint32]uint32) {
	semOf(d).liveNamespaces, vethOf(d).liveNamespaces = f, f
}

// residueOf keeps the items of one resource.
func residueOf(items []Item, resource string) []Item {
	var out []Item
	for _, it := range items {
		if it.Resource == resource {
			out = append(out, it)
		}
	}
	return out
}

func noLinks() ([]netlink.Link, error) { return nil, nil }

func TestSemCreatorLifecycle(t *testing.T) {
	sem := "key semid perms nsems uid gid cuid cgid otime ctime\n"
	d, now, _ := fakeDetector(t, sem, noLinks)
	alive := true
	semOf(d).processAlive = func(uint32, uint64) bool { return alive }
	created := *now
	d.Observe(&event.SemCreate{Header: event.Header{Time: created, PID: 42, Comm: "dmsetup", IPCNS: semOf(d).ns}, SemID: 9, Key: 0x0d4d0001, NSems: 1, Flags: 0o3600})
	// The array appears in the scan.
	semOf(d).readProc = func() ([]byte, error) {
		return []byte(sem + " 223150081 9 600 1 0 0 0 0 0 1795974690\n"), nil
	}
	*now = now.Add(2 * time.Second)
	d.Reconcile(context.Background())
	if r := d.Residue(); len(r) != 0 {
		t.Fatalf("creator alive, yet residue %+v", r)
	}
	// A later IPC_CREAT lookup of the same key by another process keeps the creator.
	d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 77, Comm: "other", IPCNS: semOf(d).ns}, SemID: 9, Key: 0x0d4d0001, Flags: 0o1600})
	alive = false
	d.Reconcile(context.Background())
	*now = now.Add(59 * time.Second)
	if r := d.Residue(); len(r) != 0 {
		t.Fatalf("within grace, yet residue %+v", r)
	}
	*now = now.Add(2 * time.Second)
	r := d.Residue()
	if len(r) != 1 || r[0].Creator.PID != 42 || r[0].Creator.Comm != "dmsetup" || r[0].Kind != KindDMUdevCookie || r[0].Remove != "ipcrm -s 9" {
		t.Fatalf("residue %+v", r)
	}
	// Removed by someone without our seeing it: the scan forgets it.
	semOf(d).readProc = func() ([]byte, error) { return []byte(sem), nil }
	d.Reconcile(context.Background())
	if r := d.Residue(); len(r) != 0 || len(d.Semaphores()) != 0 {
		t.Fatalf("after removal: residue %+v inventory %+v", r, d.Semaphores())
	}
}

// A scan read before an event's array existed must not drop the fresh entry.
func TestSemScanRaceKeepsFreshEntry(t *testing.T) {
	d, now, _ := fakeDetector(t, "key semid\n", noLinks)
	semOf(d).processAlive = func(uint32, uint64) bool { return true }
	d.Observe(&event.SemCreate{Header: event.Header{Time: now.Add(time.Second), PID: 1, IPCNS: semOf(d).ns}, SemID: 3, Key: 5, Flags: 0o3600})
	d.Reconcile(context.Background())
	if len(d.Semaphores()) != 1 {
		t.Fatalf("inventory %+v", d.Semaphores())
	}
}

func TestSemScanFaults(t *testing.T) {
	d, _, logs := fakeDetector(t, "", noLinks)
	semOf(d).readProc = func() ([]byte, error) { return nil, errors.New("permission denied") }
	d.Reconcile(context.Background())
	d.Reconcile(context.Background())
	if n := strings.Count(logs.String(), "permission denied"); n != 1 {
		t.Fatalf("a persistent read error should be logged once, got %d lines:\n%s", n, logs.String())
	}
	if d.Report().Errors["sem"] == "" {
		t.Fatal("the scan error is not in the report")
	}
	logs.Reset()
	semOf(d).readProc = func() ([]byte, error) {
		return []byte("key semid perms\n\x00\x01garbage\n 1 2 600\n-- --\n"), nil
	}
	d.Reconcile(context.Background())
	if n := strings.Count(logs.String(), "skipping unreadable line"); n != 2 || len(d.Semaphores()) != 1 {
		t.Fatalf("want 2 log lines and 1 array; logs:\n%s inventory %+v", logs.String(), d.Semaphores())
	}
}

func veth(idx int, name string, peer, nsid, master int) *netlink.Veth {
	return &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: name, ParentIndex: peer, NetNsID: nsid, MasterIndex: master}}
}

func TestVethRules(t *testing.T) {
	links := []netlink.Link{
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "docker0", NetNsID: -1}},
		veth(10, "vethgone", 0, -1, 0),        // peer gone
		veth(11, "vethpair", 12, -1, 0),       // both ends here
		veth(12, "vethpairb", 11, -1, 0),      //
		veth(13, "vethdead", 5, 1, 0),         // peer ns without processes
		veth(14, "vethnamed", 5, 2, 0),        // peer ns named by ip netns
		veth(15, "vethctr", 5, 3, 3),          // on docker0, running container
		veth(16, "vethstale", 5, 4, 3),        // on docker0, container not running
		veth(17, "vethnomaster", 5, 5, 99999), // master vanished mid-scan
		veth(18, "veth0a0a0a0", 19, -1, 3),    // whole pair on docker0: dockerd died before moving the peer
		veth(19, "veth1b1b1b1", 18, -1, 0),    //
		veth(20, "veth2c2c2c2", 21, -1, 0),    // whole Docker-named pair, not yet on the bridge
		veth(21, "veth3d3d3d3", 20, -1, 0),    // (reported once, by the lower ifindex)
	}
	d, now, _ := fakeDetector(t, "", func() ([]netlink.Link, error) { return links, nil })
	named := t.TempDir()
	if err := os.WriteFile(named+"/x", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vethOf(d).namedNetnsDir = named
	setLiveNamespaces(d, func(string) map[uint32]uint32 { return map[uint32]uint32{1003: 103, 1004: 104, 1005: 105} })
	vethOf(d).netnsID = func(path string) (int, error) {
		switch path {
		case "/proc/103/ns/net":
			return 3, nil
		case "/proc/104/ns/net":
			return 4, nil
		case "/proc/105/ns/net":
			return 5, nil
		case named + "/x":
			return 2, nil
		}
		return -1, errors.New("gone")
	}
	vethOf(d).containerOf = func(pid uint32) string {
		return map[uint32]string{103: "running", 104: "stopped"}[pid]
	}
	vethOf(d).running = func(context.Context) (map[string]bool, error) { return map[string]bool{"running": true}, nil }
	d.Reconcile(context.Background())
	got := map[string]string{}
	for _, v := range d.Veths() {
		got[v.Name] = v.Reason
	}
	want := map[string]bool{"vethgone": true, "vethpair": false, "vethpairb": false, "vethdead": true, "vethnamed": false, "vethctr": false, "vethstale": true, "vethnomaster": false,
		"veth0a0a0a0": true, "veth1b1b1b1": false, "veth2c2c2c2": true, "veth3d3d3d3": false}
	for name, residue := range want {
		if (got[name] != "") != residue {
			t.Errorf("%s: reason %q, want residue=%v", name, got[name], residue)
		}
	}
	if len(residueOf(d.Residue(), ResourceVeth)) != 0 {
		t.Fatal("residue before the grace period")
	}
	*now = now.Add(time.Minute)
	if n := len(residueOf(d.Residue(), ResourceVeth)); n != 5 {
		t.Fatalf("residue after grace: %d, want 5", n)
	}
	// Without the engine the Docker-bridge rule is not applied.
	d2, _, _ := fakeDetector(t, "", func() ([]netlink.Link, error) { return links, nil })
	setLiveNamespaces(d2, vethOf(d).liveNamespaces)
	vethOf(d2).netnsID, vethOf(d2).containerOf = vethOf(d).netnsID, vethOf(d).containerOf
	vethOf(d2).running = func(context.Context) (map[string]bool, error) { return nil, errors.New("engine down") }
	d2.Reconcile(context.Background())
	for _, v := range d2.Veths() {
		if v.Name == "vethstale" && v.Reason != "" {
			t.Fatalf("judged without the engine: %q", v.Reason)
		}
	}
	if d2.Report().Errors["docker"] == "" {
		t.Fatal("engine error not reported")
	}
}

func TestVethScanFaults(t *testing.T) {
	calls := 0
	var result func() ([]netlink.Link, error)
	d, now, logs := fakeDetector(t, "", func() ([]netlink.Link, error) { calls++; return result() })
	result = func() ([]netlink.Link, error) {
		return []netlink.Link{veth(10, "a", 0, -1, 0), veth(11, "b", 0, -1, 0)}, nil
	}
	d.Reconcile(context.Background())
	if len(d.Veths()) != 2 {
		t.Fatalf("%+v", d.Veths())
	}
	// A netlink error keeps the last state and is one log line.
	result = func() ([]netlink.Link, error) { return nil, errors.New("netlink: no buffer space") }
	d.Reconcile(context.Background())
	d.Reconcile(context.Background())
	if len(d.Veths()) != 2 || strings.Count(logs.String(), "no buffer space") != 1 {
		t.Fatalf("veths %+v logs:\n%s", d.Veths(), logs.String())
	}
	// An interrupted dump (links vanishing mid-scan) is retried, then used as
	// partial: entries it missed are kept, a nil link is skipped.
	calls = 0
	result = func() ([]netlink.Link, error) {
		return []netlink.Link{nil, veth(10, "a", 0, -1, 0)}, netlink.ErrDumpInterrupted
	}
	d.Reconcile(context.Background())
	if calls != 2 || len(d.Veths()) != 2 {
		t.Fatalf("calls %d veths %+v", calls, d.Veths())
	}
	// A complete dump then drops what vanished.
	result = func() ([]netlink.Link, error) { return []netlink.Link{veth(10, "a", 0, -1, 0)}, nil }
	d.Reconcile(context.Background())
	if len(d.Veths()) != 1 || !strings.Contains(logs.String(), "recovered") {
		t.Fatalf("veths %+v logs:\n%s", d.Veths(), logs.String())
	}
	_ = now
}

func TestVethCreatorFromEvent(t *testing.T) {
	links := []netlink.Link{veth(20, "veth1234", 0, -1, 0)}
	d, now, _ := fakeDetector(t, "", func() ([]netlink.Link, error) { return links, nil })
	d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethCreate, PID: 9, Comm: "dockerd", ContainerID: ""}, Name: "veth1234", Ifindex: 20, DevNetNS: vethOf(d).ns})
	d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethCreate, PID: 9, Comm: "dockerd"}, Name: "other", Ifindex: 21, DevNetNS: vethOf(d).ns + 1})
	d.Reconcile(context.Background())
	*now = now.Add(time.Minute)
	r := d.Residue()
	if len(r) != 1 || r[0].Creator.Comm != "dockerd" || r[0].Creator.PID != 9 || r[0].Remove != "ip link del veth1234" {
		t.Fatalf("%+v", r)
	}
	d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethDelete}, Name: "veth1234", Ifindex: 20, DevNetNS: vethOf(d).ns})
	if len(d.Veths()) != 0 {
		t.Fatal("veth_delete did not remove the entry")
	}
}

func TestCleanable(t *testing.T) {
	id := int32(1)
	dm := Item{Resource: ResourceSem, Kind: KindDMUdevCookie, SemID: &id, AgeSecond: 120}
	other := Item{Resource: ResourceSem, Kind: KindOther, SemID: &id, AgeSecond: 120}
	known := other
	known.Creator.Known = true
	v := Item{Resource: ResourceVeth, Name: "veth0", AgeSecond: 5}
	for _, c := range []struct {
		it    Item
		class string
		want  bool
	}{
		{dm, CleanDMSem, true}, {other, CleanDMSem, false}, {known, CleanDMSem, false},
		{dm, CleanSem, true}, {other, CleanSem, false}, {known, CleanSem, true},
		{v, CleanVeth, false}, {dm, CleanVeth, false},
	} {
		if got, _ := cleanable(c.it, c.class, time.Minute); got != c.want {
			t.Errorf("cleanable(%+v, %s) = %v", c.it, c.class, got)
		}
	}
	v.AgeSecond = 61
	if ok, _ := cleanable(v, CleanVeth, time.Minute); !ok {
		t.Error("old veth not cleanable")
	}
}
