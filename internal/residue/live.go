package residue

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/event"
)

// live is the detector on this machine: events update the inventories, scans
// of the kernel's own view are the authority on what exists.
type live struct {
	d    *Detector
	kick chan struct{}
	// clock is time.Now; tests set their own.
	clock func() time.Time
	// scanMu serialises scans (Run's, and direct Reconcile calls), so an older
	// scan never merges over a newer one. Observe and readers never take it.
	scanMu sync.Mutex
}

func newLive(d *Detector) *live {
	return &live{d: d, kick: make(chan struct{}, 1), clock: time.Now}
}

func (l *live) now() time.Time { return l.clock() }
func (l *live) offline() bool  { return false }

// applySnapshot: a live detector believes its scans, not a snapshot.
func (l *live) applySnapshot(time.Time, map[string]json.RawMessage) {}

// observe applies an event to the resource it is about and asks for a rescan.
func (l *live) observe(ev event.Event) {
	for _, r := range l.d.resources {
		apply := r.Observe(ev) // its I/O: before the lock
		if apply == nil {
			continue
		}
		l.d.mu.Lock()
		apply()
		l.d.mu.Unlock()
		l.Kick()
		return
	}
}

// Kick asks Run for a rescan soon.
func (l *live) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run scans at once, then every Interval and after events, until ctx ends.
// Resources that watch the kernel for changes (rtnetlink) kick it too.
func (l *live) run(ctx context.Context) {
	l.reconcile(ctx)
	for _, r := range l.d.resources {
		if w, ok := r.(watcher); ok {
			go w.Watch(ctx, l.Kick)
		}
	}
	tick := time.NewTicker(l.d.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-l.kick:
			// Let a burst of events settle into one scan.
			select {
			case <-ctx.Done():
				return
			case <-time.After(minRescan):
			}
		}
		l.reconcile(ctx)
	}
}

// watcher is a Resource that can tell when the kernel's state changed, so
// Run rescans before the next tick.
type watcher interface {
	Watch(ctx context.Context, kick func())
}

// reconcile scans every resource and publishes the residue not yet
// published. All reads (engine, sysvipc, /proc, rtnetlink) happen without
// d.mu, which is held only to list what to check and to merge the results:
// events and scrapes never wait for a scan.
func (l *live) reconcile(ctx context.Context) {
	d := l.d
	l.scanMu.Lock()
	defer l.scanMu.Unlock()
	// Entries created after start may legitimately be missing from the scan.
	start := l.now()
	d.mu.Lock()
	scans := make([]Scan, len(d.resources))
	for i, r := range d.resources {
		scans[i] = r.BeginScan()
	}
	d.mu.Unlock()
	for _, s := range scans {
		s.Read(ctx)
	}

	d.mu.Lock()
	for _, s := range scans {
		s.Merge(start)
	}
	d.scanned = true
	now := l.now()
	var fresh []Finding
	for _, r := range d.resources {
		for _, f := range r.Findings(now) {
			if !*f.Reported {
				fresh = append(fresh, f)
			}
		}
	}
	d.mu.Unlock()
	if d.opts.Publish == nil || len(fresh) == 0 {
		return
	}
	// Marked reported only once published: a refused event is retried after
	// the next scan. Entries stay valid meanwhile (scanMu: no merge runs).
	taken := make([]bool, len(fresh))
	for i, f := range fresh {
		taken[i] = d.opts.Publish(f.Item.event(now))
	}
	d.mu.Lock()
	for i, f := range fresh {
		if taken[i] {
			*f.Reported = true
		}
	}
	d.mu.Unlock()
}

// residue is what the scans judged residue at now.
func (l *live) residue(now time.Time) []Item {
	var out []Item
	for _, r := range l.d.resources {
		for _, f := range r.Findings(now) {
			out = append(out, f.Item)
		}
	}
	return out
}
