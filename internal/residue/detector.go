// Package residue finds kernel objects that a crashed or force-killed process
// left behind: System V semaphore arrays (devicemapper's udev cookies above
// all) and veth interfaces. Sensor events name who created each object; a scan
// of the kernel's own view (/proc/sysvipc/sem, rtnetlink) at start and then
// periodically is the authority on what exists.
package residue

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// Defaults.
const (
	DefaultGrace    = time.Minute
	DefaultInterval = 10 * time.Second
	// minRescan rate-limits the scans that events and link updates trigger.
	minRescan = time.Second
)

// Item is one leftover object, as /residue, /status and the CLI show it.
type Item struct {
	Resource string        `json:"resource"` // sem or veth
	Kind     string        `json:"kind"`     // sem: dm_udev_cookie or other; veth: veth
	Reason   string        `json:"reason"`
	SemID    *int32        `json:"semid,omitempty"`
	Key      string        `json:"key,omitempty"`
	IPCNS    uint32        `json:"ipc_ns,omitempty"`
	Name     string        `json:"name,omitempty"`
	Ifindex  int32         `json:"ifindex,omitempty"`
	Creator  event.Creator `json:"creator"`
	// Since is when the object was created (sem ctime, event time) or first seen.
	Since     time.Time `json:"since"`
	Age       string    `json:"age"`
	AgeSecond float64   `json:"age_seconds"`
	// AgeKnown is false when the object was found by a one-off scan and its
	// creation time is unknown (veths in a standalone scan).
	AgeUnknown bool   `json:"age_unknown,omitempty"`
	Remove     string `json:"remove_command"`
}

// MaxReportItems bounds each list of the /residue document (and /status's
// residue): a host (or a crafted /proc/sysvipc/sem) with 100k arrays made a
// 65 MB answer. Counts of what is left out are in Report.Omitted.
const MaxReportItems = 1000

// capList keeps the first MaxReportItems of list, counting the rest in omitted.
func capList[T any](list []T, name string, omitted map[string]int) []T {
	if len(list) <= MaxReportItems {
		return list
	}
	omitted[name] = len(list) - MaxReportItems
	return list[:MaxReportItems]
}

// capInventory is capList for an inventory of any slice type.
func capInventory(list any, name string, omitted map[string]int) any {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice || v.Len() <= MaxReportItems {
		return list
	}
	omitted[name] = v.Len() - MaxReportItems
	return v.Slice(0, MaxReportItems).Interface()
}

// Options configure a Detector.
type Options struct {
	Grace    time.Duration // how long an object must stay orphaned; default 1m
	Interval time.Duration // periodic rescan; default 10s
	// Engine tells which containers run; nil skips the Docker-bridge rule.
	Engine *container.EngineClient
	// Publish receives a residue event once per object that becomes residue,
	// and reports whether it took it; an event it refused (a full queue) is
	// offered again after the next scan. It must not block: the daemon passes
	// the pipeline's Inject, so that residue events reach its observers
	// (incident rules) like sensor events.
	Publish func(event.Event) bool
	Logger  *slog.Logger
	// Offline is for a replayed capture: no scans and no reads of this
	// machine's /proc, sysvipc or rtnetlink; inventories and residue come from
	// the replayed events and ApplySnapshot (see offline.go).
	Offline bool
}

// Detector keeps the inventories of its resources and decides what is
// residue. Its methods are safe for concurrent use. Observe runs on the
// pipeline goroutine, so d.mu is never held across I/O: a scan reads the
// kernel's state without it and takes it only to merge, and Observe reads a
// creator's executable before taking it.
type Detector struct {
	opts      Options
	log       *slog.Logger
	resources []Resource
	// src is where the truth comes from: this machine's kernel (live.go) or a
	// replayed capture (offline.go).
	src source

	mu      sync.Mutex
	errors  map[string]string
	scanned bool
}

// source is the detector's mode: scans of this machine, or a capture.
type source interface {
	observe(ev event.Event)
	run(ctx context.Context)
	reconcile(ctx context.Context)
	now() time.Time
	// residue is what is residue at now; under d.mu.
	residue(now time.Time) []Item
	applySnapshot(t time.Time, sections map[string]json.RawMessage)
	offline() bool
}

// New returns a Detector; call Reconcile once or Run to fill it.
func New(opts Options) *Detector {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Detector{
		opts:   opts,
		log:    opts.Logger.With("component", "residue"),
		errors: map[string]string{},
	}
	e := &env{
		grace: opts.Grace, log: d.log, engine: opts.Engine, offline: opts.Offline,
		noteError: d.noteError, clearError: d.clearError,
	}
	if opts.Offline {
		c := newCapture(d)
		d.src, e.now = c, c.now
	} else {
		l := newLive(d)
		d.src, e.now = l, l.now
	}
	d.resources = newResources(e)
	return d
}

// resource returns the resource of that name, or nil.
func (d *Detector) resource(name string) Resource {
	for _, r := range d.resources {
		if r.Name() == name {
			return r
		}
	}
	return nil
}

// Observe takes the sensor events (or, offline, the replayed ones):
// creations and removals update the inventories at once.
func (d *Detector) Observe(ev event.Event) { d.src.observe(ev) }

// Run scans at once, then every Interval and after events, until ctx ends.
// Offline, it returns at once.
func (d *Detector) Run(ctx context.Context) { d.src.run(ctx) }

// Reconcile scans the kernel's state, merges it with what events said, and
// publishes a residue event for every object that became residue. Offline,
// it does nothing.
func (d *Detector) Reconcile(ctx context.Context) { d.src.reconcile(ctx) }

// ApplySnapshot takes a replayed state snapshot's sections (offline mode
// only; a live detector ignores it).
func (d *Detector) ApplySnapshot(t time.Time, sections map[string]json.RawMessage) {
	d.src.applySnapshot(t, sections)
}

// Residue lists what is residue now.
func (d *Detector) Residue() []Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	items := d.src.residue(d.src.now())
	if items == nil {
		items = []Item{}
	}
	return items
}

// Inventory is the named section's inventory (SectionSemaphores: []Semaphore,
// SectionVeths: []Veth), nil for an unknown one: plain data, for /residue and
// flight-recorder snapshots.
func (d *Detector) Inventory(section string) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.resources {
		if r.Section() == section {
			return r.Inventory()
		}
	}
	return nil
}

// Sections are the snapshot sections the detector writes and an offline one
// reads back: each resource's inventory, then the residue list.
func (d *Detector) Sections() []string {
	out := make([]string, 0, len(d.resources)+1)
	for _, r := range d.resources {
		out = append(out, r.Section())
	}
	return append(out, SectionResidue)
}

// Snapshot is the content of one of Sections.
func (d *Detector) Snapshot(section string) any {
	if section == SectionResidue {
		return d.Residue()
	}
	return d.Inventory(section)
}

// Report is the /residue document.
func (d *Detector) Report() Report {
	items := d.Residue()
	omitted := map[string]int{}
	SortItems(items)
	d.mu.Lock()
	errs := make(map[string]string, len(d.errors))
	for k, v := range d.errors {
		errs[k] = v
	}
	rep := Report{
		Time:         d.src.now().UTC(),
		GraceSeconds: d.opts.Grace.Seconds(),
		Residue:      capList(items, "residue", omitted),
		Errors:       errs,
		inventories:  map[string]any{},
	}
	for _, r := range d.resources {
		rep.inventories[r.Section()] = capInventory(r.Inventory(), r.Section(), omitted)
	}
	d.mu.Unlock()
	if len(omitted) > 0 {
		rep.Omitted = omitted
	}
	if d.src.offline() {
		rep.GraceSeconds, rep.Offline = 0, true
	}
	return rep
}

// noteError records a scan problem and logs it once per distinct message, so a
// persistent fault is one line, not one per scan. Under d.mu.
func (d *Detector) noteError(key string, err error) {
	msg := err.Error()
	if d.errors[key] != msg {
		d.log.Warn("residue scan problem", "resource", key, "err", msg)
	}
	d.errors[key] = msg
}

func (d *Detector) clearError(key string) {
	if _, ok := d.errors[key]; ok {
		d.log.Info("residue scan recovered", "resource", key)
		delete(d.errors, key)
	}
}

// event is the residue event for it, stamped with the detector's clock (which a
// test or a replay may have set), not the wall clock.
func (it Item) event(now time.Time) *event.Residue {
	ev := &event.Residue{
		Header:   event.Header{Time: now, Type: event.TypeResidue, ContainerID: it.Creator.ContainerID},
		Resource: it.Resource,
		Kind:     it.Kind,
		Reason:   it.Reason,
		SemID:    it.SemID,
		Key:      it.Key,
		Name:     it.Name,
		Ifindex:  it.Ifindex,
		Creator:  it.Creator,
		AgeSec:   it.AgeSecond,
		Remove:   it.Remove,
	}
	ev.IPCNS = it.IPCNS
	return ev
}

// SortItems orders items for display: resource, then id or name.
func SortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.SemID != nil && b.SemID != nil {
			return *a.SemID < *b.SemID
		}
		return a.Name < b.Name
	})
}
