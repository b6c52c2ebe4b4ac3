package residue

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// Resource is one kind of kernel object the detector inventories and judges
// (semaphore arrays in sem.go, veths in veth.go). A new kind is one file: a
// type implementing Resource and a register call in its init.
//
// The detector serialises calls: those marked "under the lock" run with the
// detector's mutex held and must do no I/O, so that the pipeline (Observe) and
// readers (/residue, /metrics) never wait for the kernel.
type Resource interface {
	// Name is the Item.Resource value ("sem", "veth") and the key of its scan
	// problems in Report.Errors.
	Name() string
	// Section names its inventory: a snapshot section, a /residue list and
	// its key in Report.Omitted.
	Section() string

	// Observe takes a live sensor event. It does the event's I/O (reading the
	// creator's executable) and returns the change to apply under the lock,
	// or nil when the event is not this resource's.
	Observe(ev event.Event) (apply func())
	// BeginScan (under the lock) notes what the scan must check and starts
	// tracking removals that events report while it runs.
	BeginScan() Scan
	// Findings (under the lock) judges the inventory: what is residue at now.
	Findings(now time.Time) []Finding
	// Inventory (under the lock) is the inventory as plain, sorted data, for
	// /residue and snapshots ([]Semaphore, []Veth).
	Inventory() any

	// Replay (under the lock) takes a replayed capture's event: the offline
	// inventory follows it, and forget selects the captured residue items it
	// makes obsolete (nil: none). ok is false when the event is not this
	// resource's.
	Replay(ev event.Event) (forget func(Item) bool, ok bool)
	// Restore (under the lock) replaces the inventory with a snapshot's
	// section; on error nothing changes.
	Restore(section json.RawMessage) error

	// Describe and Collect are its part of the detector's Prometheus
	// collector; Collect runs under the lock, with the resource's current
	// residue (scanned, or the capture's).
	Describe(ch chan<- *prometheus.Desc)
	Collect(ch chan<- prometheus.Metric, residue []Item)

	// CleanClasses are the --clean classes that remove this resource's items.
	CleanClasses() []string
	// Cleanable tells whether class may remove it (an item of this resource),
	// and when not, why, if that is worth saying.
	Cleanable(it Item, class string) (ok bool, why string)
	// Label names an item in --clean's output.
	Label(it Item) string
	// Remove removes the object after checking it is still the one reported;
	// label names it for the outcome's line. A *SkipError leaves it alone
	// without failing the run.
	Remove(it Item) (label string, err error)
	// OneOff judges an item of a standalone scan (two scans, no events, so no
	// creators): keep reports whether it counts as residue at grace.
	OneOff(it Item, grace time.Duration) (out Item, keep bool)
}

// Scan is one scan of a resource: Read gathers the kernel's state without
// the lock, Merge applies it under the lock.
type Scan interface {
	Read(ctx context.Context)
	// Merge applies what Read saw to the inventory; start is when the scan
	// began (entries created after it may legitimately be missing).
	Merge(start time.Time)
}

// Finding is one residue item with its entry's published flag.
type Finding struct {
	Item     Item
	Reported *bool // set once the residue event is published
}

// SkipError is a removal --clean declines without failing (another
// namespace's object, say).
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return e.Reason }

// env is what the detector shares with its resources.
type env struct {
	grace   time.Duration
	now     func() time.Time
	log     *slog.Logger
	engine  *container.EngineClient
	offline bool
	// noteError and clearError record scan problems; under the lock.
	noteError  func(key string, err error)
	clearError func(key string)
}

// registered are the resource constructors, in the order /residue lists their
// inventories.
var registered []func(*env) Resource

func register(newResource func(*env) Resource) { registered = append(registered, newResource) }

func newResources(e *env) []Resource {
	out := make([]Resource, len(registered))
	for i, f := range registered {
		out[i] = f(e)
	}
	return out
}
