package residue

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/observer-dev/observer/internal/event"
)

// Snapshot sections: the daemon's flight recorder writes the detector's
// inventories and residue under these names (Detector.Sections), and an
// offline detector reads them back from a replayed capture.
const (
	SectionSemaphores = "semaphores" // []Semaphore
	SectionVeths      = "veths"      // []Veth
	SectionResidue    = "residue"    // []Item
)

// capture is the detector in offline mode (Options.Offline), for a replayed
// capture: there is no kernel to scan, and the one this process runs on is
// not the one captured. The detector believes the capture: its inventories
// and residue are the newest snapshot's sections, updated by the replayed
// events (each resource's Replay, and residue events). It never reads /proc,
// sysvipc or rtnetlink.
type capture struct {
	d     *Detector
	items map[string]Item // residue, by itemKey
	// snapTime is the newest snapshot applied; a residue event older than it
	// is already in that snapshot's residue list.
	snapTime time.Time
	// clock is the newest record time seen (unix ns): "now" in the capture, so
	// ages read as they did when it was taken.
	clock atomic.Int64
}

func newCapture(d *Detector) *capture { return &capture{d: d, items: map[string]Item{}} }

func (c *capture) offline() bool                { return true }
func (c *capture) run(context.Context)          {} // nothing to scan
func (c *capture) reconcile(context.Context)    {}
func (c *capture) residue(now time.Time) []Item { return c.residueAt(now) }

func (c *capture) advance(t time.Time) {
	n := t.UnixNano()
	for {
		cur := c.clock.Load()
		if n <= cur || c.clock.CompareAndSwap(cur, n) {
			return
		}
	}
}

func (c *capture) now() time.Time {
	if n := c.clock.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// itemKey identifies a residue item across snapshots and events.
func itemKey(it Item) string {
	id := int64(it.Ifindex)
	if it.SemID != nil {
		id = int64(*it.SemID)
	}
	return fmt.Sprintf("%s/%d/%d/%s", it.Resource, it.IPCNS, id, it.Name)
}

// applySnapshot takes a replayed snapshot's sections. Sections it does not
// find are left as they were; a snapshot older than one already applied is
// ignored.
func (c *capture) applySnapshot(t time.Time, sections map[string]json.RawMessage) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Before(c.snapTime) {
		return
	}
	c.advance(t)
	applied := false
	for _, r := range d.resources {
		raw, ok := sections[r.Section()]
		if !ok {
			continue
		}
		if err := r.Restore(raw); err != nil {
			d.noteError("capture", fmt.Errorf("capture snapshot section %q: %w", r.Section(), err))
			continue
		}
		applied = true
	}
	if raw, ok := sections[SectionResidue]; ok {
		var items []Item
		if err := json.Unmarshal(raw, &items); err != nil {
			d.noteError("capture", fmt.Errorf("capture snapshot section %q: %w", SectionResidue, err))
		} else {
			c.items = make(map[string]Item, len(items))
			for _, it := range items {
				c.items[itemKey(it)] = it
			}
			applied = true
		}
	}
	if applied {
		c.snapTime = t
		d.scanned = true
	}
}

// observe updates the capture's state with one replayed event.
func (c *capture) observe(ev event.Event) {
	c.advance(ev.Hdr().Time)
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := ev.(*event.Residue); ok {
		if e.Time.Before(c.snapTime) {
			return
		}
		it := itemFromEvent(e)
		c.items[itemKey(it)] = it
		d.scanned = true
		return
	}
	for _, r := range d.resources {
		forget, ok := r.Replay(ev)
		if !ok {
			continue
		}
		if forget != nil {
			for k, it := range c.items {
				if it.Resource == r.Name() && forget(it) {
					delete(c.items, k)
				}
			}
		}
		return
	}
}

// residueAt lists the capture's residue with ages at now.
func (c *capture) residueAt(now time.Time) []Item {
	out := make([]Item, 0, len(c.items))
	for _, it := range c.items {
		if !it.Since.IsZero() {
			it.AgeSecond = now.Sub(it.Since).Seconds()
			it.Age = now.Sub(it.Since).Round(time.Second).String()
		}
		out = append(out, it)
	}
	SortItems(out)
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
