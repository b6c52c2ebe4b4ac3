package residue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/event"
)

// goldenState is a live detector with residue of both resources, inventories
// that are not residue, arrays of another IPC namespace and a scan problem.
func goldenState(t *testing.T) *Detector {
	sem := "key semid perms nsems uid gid cuid cgid otime ctime\n" +
		" 223150081 9 600 1 0 0 0 0 0 1795974690\n" +
		" 1234 10 600 2 0 0 0 0 0 1795974690\n"
	links := []netlink.Link{veth(20, "veth1234", 0, -1, 0), veth(21, "vethok", 5, -1, 0), veth(5, "vethokp", 21, -1, 0)}
	d, now, _ := fakeDetector(t, sem, func() ([]netlink.Link, error) { return links, nil })
	semOf(d).ns, vethOf(d).ns = 4026531839, 4026531840
	d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 42, Comm: "dockerd", IPCNS: semOf(d).ns, ContainerID: "abc"}, SemID: 9, Key: 0x0d4d0001, NSems: 1, Flags: 0o3600})
	d.Observe(&event.SemCreate{Header: event.Header{Time: *now, PID: 43, Comm: "app", IPCNS: 777}, SemID: 3, Key: 6, Flags: 0o3600})
	setLiveNamespaces(d, func(string) map[uint32]uint32 { return map[uint32]uint32{777: 1} })
	d.Observe(&event.VethChange{Header: event.Header{Type: event.TypeVethCreate, PID: 9, Comm: "dockerd"}, Name: "veth1234", Ifindex: 20, DevNetNS: vethOf(d).ns})
	vethOf(d).running = func(context.Context) (map[string]bool, error) { return nil, errors.New("engine down") }
	d.Reconcile(context.Background())
	*now = now.Add(2 * time.Minute)
	d.Reconcile(context.Background())
	// kernel.sem as Debian's default, whatever this machine's is.
	semOf(d).limits = SemLimits{SEMMSL: 32000, SEMMNS: 1024000000, SEMOPM: 500, SEMMNI: 32000}
	return d
}

// metricsText is the detector's metrics in the text exposition format.
func metricsText(t *testing.T, d *Detector) string {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}

// TestOutputsUnchanged: the /residue document, the metrics and the CLI's
// table, live and replayed, are byte for byte what they were before the
// detector was split into resources (testdata/golden-*, written by that code).
func TestOutputsUnchanged(t *testing.T) {
	d := goldenState(t)
	live, err := json.MarshalIndent(d.Report(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]json.RawMessage{}
	for _, name := range d.Sections() {
		raw, err := json.Marshal(d.Snapshot(name))
		if err != nil {
			t.Fatal(err)
		}
		sections[name] = raw
	}
	o := New(Options{Offline: true})
	o.ApplySnapshot(time.Unix(1795978290, 0), sections)
	o.Observe(&event.SemRemove{Header: event.Header{Time: time.Unix(1795978291, 0), IPCNS: 4026531839}, SemID: 10})
	off, err := json.MarshalIndent(o.Report(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	PrintTable(&table, d.Report().Residue)
	// A report read back (as `observer residue --json` does) encodes the same.
	var back Report
	if err := json.Unmarshal(live, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(back, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{
		"live.json": live, "live.metrics": []byte(metricsText(t, d)), "off.json": off, "off.metrics": []byte(metricsText(t, o)),
		"table.txt": table.Bytes(), "live.json (decoded, encoded again)": again,
	} {
		file := strings.Fields(name)[0]
		want, err := os.ReadFile("testdata/golden-" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n%s\nwant:\n%s", name, got, want)
		}
	}
	if len(back.Semaphores()) != 3 || len(back.Veths()) != 3 || back.Semaphores()[1].Key != "0x0d4d0001" {
		t.Errorf("decoded inventories %+v %+v", back.Semaphores(), back.Veths())
	}
}
