package residue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// ResourceVeth is host-side veth interfaces whose other end is gone, sits in a
// namespace nothing uses, or never reached a running container.
const ResourceVeth = "veth"

// CleanVeth is the --clean class of veths.
const CleanVeth = "veth"

func init() { register(func(e *env) Resource { return newVethResource(e) }) }

// NamedNetnsDir is where `ip netns add` pins namespaces: a namespace named
// there is kept on purpose, even without processes.
const NamedNetnsDir = "/run/netns"

const maxCreators = 4096

// vethEntry is one host-side veth interface.
type vethEntry struct {
	ifindex     int32
	name        string
	peerIndex   int
	peerNetnsID int    // -1: the peer is in the observer's namespace
	peerNS      uint32 // inode of the peer's namespace when a live process shows it
	master      string
	firstSeen   time.Time
	creator     event.Creator
	orphanSince time.Time // when a residue condition was first seen
	reason      string
	reported    bool
}

// Veth is an interface as inventories and snapshots show it (plain data).
type Veth struct {
	Ifindex     int32         `json:"ifindex"`
	Name        string        `json:"name"`
	PeerIfindex int           `json:"peer_ifindex,omitempty"`
	PeerNetnsID int           `json:"peer_netns_id"` // -1: same namespace as the observer
	PeerNetNS   uint32        `json:"peer_net_ns,omitempty"`
	Master      string        `json:"master,omitempty"`
	Creator     event.Creator `json:"creator"`
	FirstSeen   time.Time     `json:"first_seen"`
	OrphanSince time.Time     `json:"orphan_since,omitzero"`
	Reason      string        `json:"orphan_reason,omitempty"`
}

// vethResource inventories the veths of the observer's network namespace
// (from rtnetlink dumps) with their creators (from veth events), and judges
// each by where its peer is. A veth is residue once a residue condition has
// held for grace.
type vethResource struct {
	env *env
	ns  uint32 // the observer's network namespace (0 offline)

	// The kernel's and the engine's state, replaceable by tests.
	listLinks      func() ([]netlink.Link, error)
	netnsID        func(path string) (int, error)
	namedNetnsDir  string
	liveNamespaces func(kind string) map[uint32]uint32
	containerOf    func(pid uint32) string
	running        func(ctx context.Context) (map[string]bool, error)

	// Under the detector's lock.
	entries  map[int32]*vethEntry
	creators *creatorCache // creators by ifindex, from events, until a scan sees the device
	// removed, while a scan runs, are the veths events deleted (ifindex -> name).
	removed map[int32]string
}

func newVethResource(e *env) *vethResource {
	r := &vethResource{
		env: e, entries: map[int32]*vethEntry{}, creators: newCreatorCache(maxCreators),
		listLinks: netlink.LinkList, netnsID: netnsIDOf, namedNetnsDir: NamedNetnsDir,
		liveNamespaces: liveNamespaces, containerOf: containerOfPid,
	}
	r.running = r.runningContainers
	if !e.offline {
		r.ns, _ = nsInode("/proc/self/ns/net")
	}
	return r
}

func (r *vethResource) Name() string    { return ResourceVeth }
func (r *vethResource) Section() string { return SectionVeths }

// Veths is the current inventory of host-side veth interfaces, by ifindex:
// plain data, for /residue and flight-recorder snapshots.
func (d *Detector) Veths() []Veth { return d.Inventory(SectionVeths).([]Veth) }

// Veths is the report's inventory of veths.
func (r Report) Veths() []Veth { return inventoryOf[Veth](r, SectionVeths) }

// hostSide tells whether a veth event's device is in the observer's network
// namespace: only those can be host sides.
func (r *vethResource) hostSide(ev *event.VethChange) bool {
	return ev.DevNetNS == 0 || r.ns == 0 || ev.DevNetNS == r.ns
}

// Observe records creations and deletions of host-side devices.
func (r *vethResource) Observe(ev event.Event) func() {
	e, ok := ev.(*event.VethChange)
	if !ok || !r.hostSide(e) {
		return nil
	}
	exe := ""
	if e.Type != event.TypeVethDelete {
		exe = exePath(e.PID)
	}
	return func() { r.onEvent(e, exe) }
}

// onEvent records a creation or deletion; exe is the creator's executable.
func (r *vethResource) onEvent(ev *event.VethChange, exe string) {
	if ev.Type == event.TypeVethDelete {
		delete(r.entries, ev.Ifindex)
		if r.removed != nil {
			r.removed[ev.Ifindex] = ev.Name
		}
		return
	}
	c := event.Creator{Known: true, PID: ev.PID, Comm: ev.Comm, Exe: exe, ContainerID: ev.ContainerID}
	if e, ok := r.entries[ev.Ifindex]; ok && e.name == ev.Name {
		e.creator = c
		return
	}
	r.creators.put(ev.Ifindex, ev.Name, c)
}

// dockerBridge tells whether a bridge is one Docker manages: docker0 or a
// user-defined network's br-<12 hex>.
func dockerBridge(name string) bool {
	return name == "docker0" || (strings.HasPrefix(name, "br-") && len(name) == 15)
}

// dockerVethName matches libnetwork's generated names: "veth" and 7 hex digits.
func dockerVethName(name string) bool {
	if len(name) != 11 || !strings.HasPrefix(name, "veth") {
		return false
	}
	for _, c := range name[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func netnsIDOf(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	return netlink.GetNetNsIdByFd(int(f.Fd()))
}

// containerOfPid returns the id of the container a process runs in, from its
// cgroup paths ("" for the host or when it is gone).
func containerOfPid(pid uint32) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			if id := container.IDFromCgroupPath(parts[2]); id != "" {
				return id
			}
		}
	}
	return ""
}

// runningContainers asks the engine which containers run; nil when unknown.
func (r *vethResource) runningContainers(ctx context.Context) (map[string]bool, error) {
	if r.env.engine == nil {
		return nil, nil
	}
	list, err := r.env.engine.Running(ctx)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil // no engine socket: Docker is not running here, nothing to ask
	}
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", r.env.engine.Endpoint(), err)
	}
	out := make(map[string]bool, len(list))
	for _, c := range list {
		out[c.ID] = true
	}
	return out, nil
}

// listVeths dumps the links; an interrupted dump (links changed meanwhile) is
// retried once, then used as partial.
func (r *vethResource) listVeths() (links []netlink.Link, complete bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		links, err = r.listLinks()
		if err == nil {
			return links, true, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, false, err
		}
	}
	return links, false, nil
}

// peerNamespaces maps netns ids (as the observer's namespace numbers them) to
// namespaces with a live process (inode, one pid) and to named namespaces.
func (r *vethResource) peerNamespaces() (live map[int]nsProc, named map[int]string) {
	live, named = map[int]nsProc{}, map[int]string{}
	for ino, pid := range r.liveNamespaces("net") {
		id, err := r.netnsID(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || id < 0 {
			continue // exited meanwhile, or a namespace no veth of ours points into
		}
		live[id] = nsProc{ino: ino, pid: pid}
	}
	files, _ := filepath.Glob(filepath.Join(r.namedNetnsDir, "*"))
	for _, f := range files {
		if id, err := r.netnsID(f); err == nil && id >= 0 {
			named[id] = filepath.Base(f)
		}
	}
	return live, named
}

type nsProc struct {
	ino uint32
	pid uint32
}

// vethScan is what a scan read about the engine, links and namespaces,
// gathered without the lock.
type vethScan struct {
	r         *vethResource
	running   map[string]bool // running containers; nil when unknown
	engineErr error
	links     []netlink.Link
	complete  bool
	err       error
	byIndex   map[int]netlink.Link
	live      map[int]nsProc    // peer namespaces with a live process, by netns id
	named     map[int]string    // named peer namespaces, by netns id
	ctrOf     map[uint32]string // container of a peer namespace's process (Docker-bridge rule)
}

// master is a link's master's name ("" when none, or it vanished mid-scan).
func (sc *vethScan) master(a *netlink.LinkAttrs) string {
	if m, ok := sc.byIndex[a.MasterIndex]; ok && a.MasterIndex != 0 {
		return m.Attrs().Name
	}
	return ""
}

func (r *vethResource) BeginScan() Scan {
	r.removed = map[int32]string{}
	return &vethScan{r: r}
}

// Read asks the engine which containers run, dumps the links and, for veths
// whose peer is in another namespace, looks the namespaces (a walk of /proc)
// and their processes' containers up: all the I/O of a veth scan.
func (sc *vethScan) Read(ctx context.Context) {
	r := sc.r
	sc.running, sc.engineErr = r.running(ctx)
	sc.links, sc.complete, sc.err = r.listVeths()
	if sc.err != nil {
		return
	}
	sc.byIndex = make(map[int]netlink.Link, len(sc.links))
	for _, l := range sc.links {
		if l != nil && l.Attrs() != nil {
			sc.byIndex[l.Attrs().Index] = l
		}
	}
	for _, l := range sc.links {
		if l == nil || l.Attrs() == nil || l.Type() != "veth" {
			continue
		}
		a := l.Attrs()
		if a.ParentIndex == 0 || a.NetNsID < 0 {
			continue
		}
		if sc.live == nil {
			sc.live, sc.named = r.peerNamespaces()
			sc.ctrOf = map[uint32]string{}
		}
		if p, ok := sc.live[a.NetNsID]; ok && sc.running != nil && dockerBridge(sc.master(a)) {
			if _, done := sc.ctrOf[p.pid]; !done {
				sc.ctrOf[p.pid] = r.containerOf(p.pid)
			}
		}
	}
}

// Merge applies the dump to the inventory and judges each veth.
func (sc *vethScan) Merge(now time.Time) {
	r := sc.r
	defer func() { r.removed = nil }()
	running := sc.running
	if sc.engineErr != nil {
		r.env.noteError("docker", sc.engineErr)
	} else if running != nil {
		r.env.clearError("docker")
	}
	if sc.err != nil {
		r.env.noteError(ResourceVeth, fmt.Errorf("list links: %w", sc.err))
		return
	}
	complete, byIndex := sc.complete, sc.byIndex
	if !complete {
		r.env.noteError(ResourceVeth, errors.New("link dump interrupted twice (links changing); keeping entries the dump missed"))
	} else {
		r.env.clearError(ResourceVeth)
	}
	seen := map[int32]bool{}
	for _, l := range sc.links {
		if l == nil || l.Attrs() == nil || l.Type() != "veth" {
			continue
		}
		a := l.Attrs()
		idx := int32(a.Index)
		if name, ok := r.removed[idx]; ok && name == a.Name {
			continue // deleted after the dump listed it
		}
		seen[idx] = true
		e, ok := r.entries[idx]
		if !ok || e.name != a.Name {
			e = &vethEntry{ifindex: idx, name: a.Name, firstSeen: now}
			if c, ok := r.creators.take(idx, a.Name); ok {
				e.creator = c
			}
			r.entries[idx] = e
		}
		e.peerIndex, e.peerNetnsID, e.peerNS, e.master = a.ParentIndex, a.NetNsID, 0, sc.master(a)
		reason := ""
		switch {
		case a.ParentIndex == 0:
			reason = "its peer is gone"
		case a.NetNsID < 0:
			p, ok := byIndex[a.ParentIndex]
			switch {
			case !ok && complete:
				reason = "its peer is gone"
			case !ok:
			case dockerBridge(e.master):
				// Docker moves the container end into the sandbox before it attaches
				// the host end; a pair still whole here was abandoned (dockerd killed).
				reason = fmt.Sprintf("on Docker bridge %s, but its peer %s never moved into a container", e.master, p.Attrs().Name)
			case dockerVethName(a.Name) && dockerVethName(p.Attrs().Name) && p.Attrs().MasterIndex == 0 && a.Index < p.Attrs().Index:
				// Neither end attached yet: report the pair once, by its lower ifindex.
				reason = fmt.Sprintf("a Docker-named pair (peer %s) that never moved into a container", p.Attrs().Name)
			}
		default:
			p, hasProc := sc.live[a.NetNsID]
			e.peerNS = p.ino
			switch {
			case hasProc && dockerBridge(e.master) && running != nil:
				if cid := sc.ctrOf[p.pid]; !running[cid] {
					reason = fmt.Sprintf("on Docker bridge %s, but no running container owns its peer's network namespace", e.master)
				}
			case hasProc:
			case sc.named[a.NetNsID] != "":
			default:
				reason = fmt.Sprintf("its peer's network namespace (nsid %d) has no live process and no name", a.NetNsID)
			}
		}
		if reason == "" {
			e.orphanSince, e.reason, e.reported = time.Time{}, "", false
			continue
		}
		if e.orphanSince.IsZero() {
			e.orphanSince = now
		}
		e.reason = reason
	}
	if complete {
		for idx := range r.entries {
			if !seen[idx] {
				delete(r.entries, idx)
			}
		}
	}
}

// Findings are the veths orphaned for at least grace.
func (r *vethResource) Findings(now time.Time) []Finding {
	var found []*vethEntry
	for _, e := range r.entries {
		if !e.orphanSince.IsZero() && now.Sub(e.orphanSince) >= r.env.grace {
			found = append(found, e)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].ifindex < found[j].ifindex })
	out := make([]Finding, len(found))
	for i, e := range found {
		out[i] = Finding{Item: e.item(now), Reported: &e.reported}
	}
	return out
}

func (e *vethEntry) item(now time.Time) Item {
	return Item{
		Resource:  ResourceVeth,
		Kind:      "veth",
		Reason:    e.reason,
		Name:      e.name,
		Ifindex:   e.ifindex,
		Creator:   e.creator,
		Since:     e.firstSeen,
		Age:       now.Sub(e.firstSeen).Round(time.Second).String(),
		AgeSecond: now.Sub(e.firstSeen).Seconds(),
		Remove:    "ip link del " + e.name,
	}
}

// Inventory is []Veth, by ifindex.
func (r *vethResource) Inventory() any {
	out := make([]Veth, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, Veth{
			Ifindex: e.ifindex, Name: e.name, PeerIfindex: e.peerIndex, PeerNetnsID: e.peerNetnsID,
			PeerNetNS: e.peerNS, Master: e.master, Creator: e.creator, FirstSeen: e.firstSeen,
			OrphanSince: e.orphanSince, Reason: e.reason,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ifindex < out[j].Ifindex })
	return out
}

// Replay follows a capture's veth events. Whether a new veth is a host side
// the capture's scans decided; the snapshots carry the inventory. Events name
// creators and deletions.
func (r *vethResource) Replay(ev event.Event) (func(Item) bool, bool) {
	e, ok := ev.(*event.VethChange)
	if !ok {
		return nil, false
	}
	v, known := r.entries[e.Ifindex]
	if e.Type == event.TypeVethDelete {
		delete(r.entries, e.Ifindex)
		return func(it Item) bool { return it.Ifindex == e.Ifindex }, true
	}
	if known && v.name == e.Name {
		v.creator = event.Creator{Known: true, PID: e.PID, Comm: e.Comm, ContainerID: e.ContainerID}
	}
	return nil, true
}

// Restore replaces the inventory with a snapshot's []Veth.
func (r *vethResource) Restore(section json.RawMessage) error {
	var veths []Veth
	if err := json.Unmarshal(section, &veths); err != nil {
		return err
	}
	r.entries = make(map[int32]*vethEntry, len(veths))
	for _, v := range veths {
		r.entries[v.Ifindex] = &vethEntry{
			ifindex: v.Ifindex, name: v.Name, peerIndex: v.PeerIfindex, peerNetnsID: v.PeerNetnsID,
			peerNS: v.PeerNetNS, master: v.Master, creator: v.Creator, firstSeen: v.FirstSeen,
			orphanSince: v.OrphanSince, reason: v.Reason,
		}
	}
	return nil
}

var (
	vethDesc = prometheus.NewDesc("observer_veth_interfaces",
		"veth interfaces in the observer's network namespace.", nil, nil)
	vethResidueDesc = prometheus.NewDesc("observer_veth_residue",
		"veth interfaces left behind: peer gone, peer namespace without processes, or on a Docker bridge with no running container.",
		nil, nil)
)

func (r *vethResource) Describe(ch chan<- *prometheus.Desc) {
	ch <- vethDesc
	ch <- vethResidueDesc
}

func (r *vethResource) Collect(ch chan<- prometheus.Metric, residue []Item) {
	ch <- prometheus.MustNewConstMetric(vethDesc, prometheus.GaugeValue, float64(len(r.entries)))
	ch <- prometheus.MustNewConstMetric(vethResidueDesc, prometheus.GaugeValue, float64(len(residue)))
}

func (r *vethResource) CleanClasses() []string { return []string{CleanVeth} }

func (r *vethResource) Cleanable(Item, string) (bool, string) { return true, "" }

func (r *vethResource) Label(it Item) string { return it.Name }

// Remove deletes the link if it is still the reported veth (same ifindex and name).
func (r *vethResource) Remove(it Item) (string, error) {
	label := "veth " + it.Name
	l, err := netlink.LinkByIndex(int(it.Ifindex))
	if err != nil {
		return label, fmt.Errorf("ifindex %d: %w", it.Ifindex, err)
	}
	if l.Attrs().Name != it.Name || l.Type() != "veth" {
		return label, fmt.Errorf("ifindex %d is now %s (%s): not the reported veth", it.Ifindex, l.Attrs().Name, l.Type())
	}
	return label, netlink.LinkDel(l)
}

// OneOff: a veth's first sighting in a one-off scan is no creation time, so
// its age is unknown; orphaned in both scans, it counts.
func (r *vethResource) OneOff(it Item, _ time.Duration) (Item, bool) {
	it.AgeUnknown, it.Age, it.AgeSecond = true, "?", 0
	return it, true
}

// Watch kicks a rescan when rtnetlink reports a link change. A failed
// subscription is one log line; the periodic scan still runs.
func (r *vethResource) Watch(ctx context.Context, kick func()) {
	ch := make(chan netlink.LinkUpdate, 64)
	err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the socket at shutdown fails its last receive
				r.env.log.Warn("rtnetlink link monitor", "err", err)
			}
		},
	})
	if err != nil {
		r.env.log.Warn("rtnetlink link monitor unavailable; relying on periodic scans", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Link != nil && u.Link.Type() == "veth" {
				kick()
			}
		}
	}
}

// creatorCache holds veth creators from events until a scan sees the device.
// Bounded: past max entries an arbitrary one is dropped (its veth then shows
// no creator, which is the truth the observer can still tell).
type creatorCache struct {
	max int
	m   map[int32]creatorRec
}

type creatorRec struct {
	name string
	c    event.Creator
}

func newCreatorCache(max int) *creatorCache {
	return &creatorCache{max: max, m: map[int32]creatorRec{}}
}

func (c *creatorCache) put(idx int32, name string, cr event.Creator) {
	if _, ok := c.m[idx]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[idx] = creatorRec{name, cr}
}

// take returns the creator recorded for ifindex when the name matches too
// (a reused ifindex comes with another name).
func (c *creatorCache) take(idx int32, name string) (event.Creator, bool) {
	r, ok := c.m[idx]
	if !ok || r.name != name {
		return event.Creator{}, false
	}
	delete(c.m, idx)
	return r.c, true
}
