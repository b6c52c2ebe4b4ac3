package residue

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

// Snapshot sections: the daemon's flight recorder writes the detector's
// inventories and residue under these names, and an offline detector reads
// them back from a replayed capture.
const (
	SectionSemaphores = "semaphores" // []Semaphore
	SectionVeths      = "veths"      // []Veth
	SectionResidue    = "residue"    // []Item
)

// Offline mode (Options.Offline) is for a replayed capture: there is no kernel
// to scan, and the one this process runs on is not the one captured. The
// detector believes the capture: its inventories and residue are the newest
// snapshot's sections, updated by the replayed events (sem_create, sem_remove,
// veth_create/delete, residue). It never reads /proc, sysvipc or rtnetlink.
type offlineState struct {
	items map[string]Item // residue, by itemKey
	// snapTime is the newest snapshot applied; a residue event older than it
	// is already in that snapshot's residue list.
	snapTime time.Time
	// clock is the newest record time seen (unix ns): "now" in the capture, so
	// ages read as they did when it was taken.
	clock atomic.Int64
}

func (o *offlineState) advance(t time.Time) {
	n := t.UnixNano()
	for {
		cur := o.clock.Load()
		if n <= cur || o.clock.CompareAndSwap(cur, n) {
			return
		}
	}
}

func (o *offlineState) now() time.Time {
	if n := o.clock.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

func itemKey(it Item) string {
	if it.Resource == ResourceSem && it.SemID != nil {
		return fmt.Sprintf("sem/%d/%d", it.IPCNS, *it.SemID)
	}
	return fmt.Sprintf("%s/%d/%s", it.Resource, it.Ifindex, it.Name)
}

func semItemKey(ns uint32, id int32) string { return fmt.Sprintf("sem/%d/%d", ns, id) }

// ApplySnapshot takes a replayed state snapshot's sections (offline mode only;
// a live detector ignores it). Sections it does not find are left as they
// were; a snapshot older than one already applied is ignored.
func (d *Detector) ApplySnapshot(t time.Time, sections map[string]json.RawMessage) {
	if d.offline == nil {
		return
	}
	var sems []Semaphore
	var veths []Veth
	var items []Item
	decode := func(name string, v any) (bool, error) {
		raw, ok := sections[name]
		if !ok {
			return false, nil
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return false, fmt.Errorf("capture snapshot section %q: %w", name, err)
		}
		return true, nil
	}
	haveSems, semErr := decode(SectionSemaphores, &sems)
	haveVeths, vethErr := decode(SectionVeths, &veths)
	haveItems, itemErr := decode(SectionResidue, &items)

	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Before(d.offline.snapTime) {
		return
	}
	d.offline.advance(t)
	for _, err := range []error{semErr, vethErr, itemErr} {
		if err != nil {
			d.noteError("capture", err)
		}
	}
	if haveSems {
		d.sems = make(map[semKey]*semEntry, len(sems))
		for _, s := range sems {
			key, _ := parseKey(s.Key)
			d.sems[semKey{s.IPCNS, s.SemID}] = &semEntry{
				ns: s.IPCNS, id: s.SemID, key: key, nsems: s.NSems, creator: s.Creator,
				created: s.CreatedAt, goneAt: s.CreatorGoneAt,
			}
		}
	}
	if haveVeths {
		d.veths = make(map[int32]*vethEntry, len(veths))
		for _, v := range veths {
			d.veths[v.Ifindex] = &vethEntry{
				ifindex: v.Ifindex, name: v.Name, peerIndex: v.PeerIfindex, peerNetnsID: v.PeerNetnsID,
				peerNS: v.PeerNetNS, master: v.Master, creator: v.Creator, firstSeen: v.FirstSeen,
				orphanSince: v.OrphanSince, reason: v.Reason,
			}
		}
	}
	if haveItems {
		d.offline.items = make(map[string]Item, len(items))
		for _, it := range items {
			d.offline.items[itemKey(it)] = it
		}
	}
	if haveSems || haveVeths || haveItems {
		d.offline.snapTime = t
		d.scanned = true
	}
}

// observeOffline updates the capture's state with one replayed event.
func (d *Detector) observeOffline(ev event.Event) {
	d.offline.advance(ev.Hdr().Time)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e := ev.(type) {
	case *event.SemCreate:
		k := semKey{e.IPCNS, e.SemID}
		if old, ok := d.sems[k]; ok && old.key == e.Key && (old.creator.PID == e.PID || e.Flags&unix.IPC_EXCL == 0) {
			return // known already (from a snapshot, which may know more: the creator gone)
		}
		// No executable: /proc/<pid>/exe here is another machine's process.
		d.sems[k] = &semEntry{
			ns: e.IPCNS, id: e.SemID, key: e.Key, nsems: e.NSems, created: e.Time,
			creator: event.Creator{Known: true, PID: e.PID, Comm: e.Comm, ContainerID: e.ContainerID},
		}
		delete(d.offline.items, semItemKey(e.IPCNS, e.SemID))
	case *event.SemRemove:
		delete(d.sems, semKey{e.IPCNS, e.SemID})
		delete(d.offline.items, semItemKey(e.IPCNS, e.SemID))
	case *event.VethChange:
		// Whether a new veth is a host side the capture's scans decided; the
		// snapshots carry the inventory. Events name creators and deletions.
		v, ok := d.veths[e.Ifindex]
		if e.Type == event.TypeVethDelete {
			delete(d.veths, e.Ifindex)
			for k, it := range d.offline.items {
				if it.Resource == ResourceVeth && it.Ifindex == e.Ifindex {
					delete(d.offline.items, k)
				}
			}
		} else if ok && v.name == e.Name {
			v.creator = event.Creator{Known: true, PID: e.PID, Comm: e.Comm, ContainerID: e.ContainerID}
		}
	case *event.Residue:
		if e.Time.Before(d.offline.snapTime) {
			return
		}
		it := itemFromEvent(e)
		d.offline.items[itemKey(it)] = it
		d.scanned = true
	}
}

// offlineResidue lists the capture's residue with ages at now.
func (d *Detector) offlineResidue(now time.Time) []Item {
	out := make([]Item, 0, len(d.offline.items))
	for _, it := range d.offline.items {
		if !it.Since.IsZero() {
			it.AgeSecond = now.Sub(it.Since).Seconds()
			it.Age = now.Sub(it.Since).Round(time.Second).String()
		}
		out = append(out, it)
	}
	sortItems(out)
	return out
}

// itemFromEvent is the inverse of Item.event.
func itemFromEvent(e *event.Residue) Item {
	since := e.Time.Add(-time.Duration(e.AgeSec * float64(time.Second)))
	return Item{
		Resource: e.Resource, Kind: e.Kind, Reason: e.Reason, SemID: e.SemID, Key: e.Key, IPCNS: e.IPCNS,
		Name: e.Name, Ifindex: e.Ifindex, Creator: e.Creator, Since: since,
		Age: time.Duration(e.AgeSec * float64(time.Second)).Round(time.Second).String(), AgeSecond: e.AgeSec,
		Remove: e.Remove,
	}
}

// parseKey reads a key as FormatKey prints it.
func parseKey(s string) (int32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	return int32(uint32(v)), err
}
