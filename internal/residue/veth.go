package residue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

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

// hostSide tells whether a veth event's device is in the observer's network
// namespace: only those can be host sides.
func (d *Detector) hostSide(ev *event.VethChange) bool {
	return ev.DevNetNS == 0 || d.netNS == 0 || ev.DevNetNS == d.netNS
}

// onVethEvent records a creation or deletion of a host-side device; exe is
// the creator's executable, read by the caller before it took d.mu.
func (d *Detector) onVethEvent(ev *event.VethChange, exe string) {
	if !d.hostSide(ev) {
		return
	}
	if ev.Type == event.TypeVethDelete {
		delete(d.veths, ev.Ifindex)
		if d.scanning {
			d.removedVeth[ev.Ifindex] = ev.Name
		}
		return
	}
	c := event.Creator{Known: true, PID: ev.PID, Comm: ev.Comm, Exe: exe, ContainerID: ev.ContainerID}
	if e, ok := d.veths[ev.Ifindex]; ok && e.name == ev.Name {
		e.creator = c
		return
	}
	d.creators.put(ev.Ifindex, ev.Name, c)
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
func (d *Detector) runningContainers(ctx context.Context) (map[string]bool, error) {
	if d.opts.Engine == nil {
		return nil, nil
	}
	list, err := d.opts.Engine.Running(ctx)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil // no engine socket: Docker is not running here, nothing to ask
	}
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", d.opts.Engine.Endpoint(), err)
	}
	out := make(map[string]bool, len(list))
	for _, c := range list {
		out[c.ID] = true
	}
	return out, nil
}

// listVeths dumps the links; an interrupted dump (links changed meanwhile) is
// retried once, then used as partial.
func (d *Detector) listVeths() (links []netlink.Link, complete bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		links, err = d.opts.listLinks()
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
func (d *Detector) peerNamespaces() (live map[int]nsProc, named map[int]string) {
	live, named = map[int]nsProc{}, map[int]string{}
	for ino, pid := range d.opts.liveNamespaces("net") {
		id, err := d.opts.netnsID(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || id < 0 {
			continue // exited meanwhile, or a namespace no veth of ours points into
		}
		live[id] = nsProc{ino: ino, pid: pid}
	}
	files, _ := filepath.Glob(filepath.Join(d.opts.namedNetnsDir, "*"))
	for _, f := range files {
		if id, err := d.opts.netnsID(f); err == nil && id >= 0 {
			named[id] = filepath.Base(f)
		}
	}
	return live, named
}

type nsProc struct {
	ino uint32
	pid uint32
}

// vethScan is what a scan read about links and namespaces, gathered without d.mu.
type vethScan struct {
	links    []netlink.Link
	complete bool
	err      error
	byIndex  map[int]netlink.Link
	live     map[int]nsProc    // peer namespaces with a live process, by netns id
	named    map[int]string    // named peer namespaces, by netns id
	ctrOf    map[uint32]string // container of a peer namespace's process (Docker-bridge rule)
}

// master is a link's master's name ("" when none, or it vanished mid-scan).
func (sc *vethScan) master(a *netlink.LinkAttrs) string {
	if m, ok := sc.byIndex[a.MasterIndex]; ok && a.MasterIndex != 0 {
		return m.Attrs().Name
	}
	return ""
}

// scanVeths dumps the links and, for veths whose peer is in another
// namespace, looks the namespaces (a walk of /proc) and their processes'
// containers up: all the I/O of a veth scan, without d.mu.
func (d *Detector) scanVeths(running map[string]bool) vethScan {
	var sc vethScan
	sc.links, sc.complete, sc.err = d.listVeths()
	if sc.err != nil {
		return sc
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
			sc.live, sc.named = d.peerNamespaces()
			sc.ctrOf = map[uint32]string{}
		}
		if p, ok := sc.live[a.NetNsID]; ok && running != nil && dockerBridge(sc.master(a)) {
			if _, done := sc.ctrOf[p.pid]; !done {
				sc.ctrOf[p.pid] = d.opts.containerOf(p.pid)
			}
		}
	}
	return sc
}

// reconcileVeths scans the links, then merges them under d.mu.
func (d *Detector) reconcileVeths(now time.Time, running map[string]bool, engineErr error) {
	sc := d.scanVeths(running)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mergeVeths(now, sc, running, engineErr)
}

// mergeVeths applies a veth scan to the inventory and judges each veth.
// Called with d.mu held; it does no I/O.
func (d *Detector) mergeVeths(now time.Time, sc vethScan, running map[string]bool, engineErr error) {
	if engineErr != nil {
		d.noteError("docker", engineErr)
	} else if running != nil {
		d.clearError("docker")
	}
	if sc.err != nil {
		d.noteError("veth", fmt.Errorf("list links: %w", sc.err))
		return
	}
	complete, byIndex := sc.complete, sc.byIndex
	if !complete {
		d.noteError("veth", errors.New("link dump interrupted twice (links changing); keeping entries the dump missed"))
	} else {
		d.clearError("veth")
	}
	seen := map[int32]bool{}
	for _, l := range sc.links {
		if l == nil || l.Attrs() == nil || l.Type() != "veth" {
			continue
		}
		a := l.Attrs()
		idx := int32(a.Index)
		if name, ok := d.removedVeth[idx]; ok && name == a.Name {
			continue // deleted after the dump listed it
		}
		seen[idx] = true
		e, ok := d.veths[idx]
		if !ok || e.name != a.Name {
			e = &vethEntry{ifindex: idx, name: a.Name, firstSeen: now}
			if c, ok := d.creators.take(idx, a.Name); ok {
				e.creator = c
			}
			d.veths[idx] = e
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
		for idx := range d.veths {
			if !seen[idx] {
				delete(d.veths, idx)
			}
		}
	}
}

func (d *Detector) vethResidue(now time.Time) []*vethEntry {
	var out []*vethEntry
	for _, e := range d.veths {
		if !e.orphanSince.IsZero() && now.Sub(e.orphanSince) >= d.opts.Grace {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ifindex < out[j].ifindex })
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

// Veths is the current inventory of host-side veth interfaces, by ifindex:
// plain data, for /residue and flight-recorder snapshots.
func (d *Detector) Veths() []Veth {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Veth, 0, len(d.veths))
	for _, e := range d.veths {
		out = append(out, Veth{
			Ifindex: e.ifindex, Name: e.name, PeerIfindex: e.peerIndex, PeerNetnsID: e.peerNetnsID,
			PeerNetNS: e.peerNS, Master: e.master, Creator: e.creator, FirstSeen: e.firstSeen,
			OrphanSince: e.orphanSince, Reason: e.reason,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ifindex < out[j].Ifindex })
	return out
}

// watchLinks rescans when rtnetlink reports a link change. A failed
// subscription is one log line; the periodic scan still runs.
func (d *Detector) watchLinks(ctx context.Context) {
	ch := make(chan netlink.LinkUpdate, 64)
	err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the socket at shutdown fails its last receive
				d.log.Warn("rtnetlink link monitor", "err", err)
			}
		},
	})
	if err != nil {
		d.log.Warn("rtnetlink link monitor unavailable; relying on periodic scans", "err", err)
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
				d.Kick()
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
