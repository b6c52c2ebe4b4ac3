// Package residue finds kernel objects that a crashed or force-killed process
// left behind: System V semaphore arrays (devicemapper's udev cookies above
// all) and veth interfaces. Sensor events name who created each object; a scan
// of the kernel's own view (/proc/sysvipc/sem, rtnetlink) at start and then
// periodically is the authority on what exists.
package residue

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

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

// Resources.
const (
	ResourceSem  = "sem"
	ResourceVeth = "veth"
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

// Report is the /residue document.
type Report struct {
	Time         time.Time   `json:"time"`
	GraceSeconds float64     `json:"grace_seconds"`
	Residue      []Item      `json:"residue"`
	Semaphores   []Semaphore `json:"semaphores"`
	Veths        []Veth      `json:"veths"`
	// Errors are the last scan problems per resource (empty when the last scan was clean).
	Errors map[string]string `json:"errors,omitempty"`
	// Offline: the report comes from a replayed capture, not from scans (Time
	// is the capture's; the grace period it was judged with is not known here).
	Offline bool `json:"offline,omitempty"`
	// Omitted counts, per list ("residue", "semaphores", "veths"), the items
	// left out past MaxReportItems (the first ones in the lists' order are kept).
	Omitted map[string]int `json:"omitted,omitempty"`
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

	// Sources, replaceable by tests for fault injection.
	readSemProc    func() ([]byte, error)
	listLinks      func() ([]netlink.Link, error)
	netnsID        func(path string) (int, error)
	namedNetnsDir  string
	liveNamespaces func(kind string) map[uint32]uint32
	processAlive   func(pid uint32, startTicks uint64) bool
	containerOf    func(pid uint32) string
	now            func() time.Time
}

// Detector keeps the inventories and decides what is residue. Its methods are
// safe for concurrent use. Observe runs on the pipeline goroutine, so d.mu is
// never held across I/O: a scan reads the kernel's state without it and takes
// it only to merge, and Observe reads a creator's executable before taking it.
type Detector struct {
	opts Options
	log  *slog.Logger
	kick chan struct{}

	// scanMu serialises scans (Run's, and direct Reconcile calls), so an older
	// scan never merges over a newer one. Observe and readers never take it.
	scanMu sync.Mutex

	// badSemMu guards what warnBadSemLines last logged, and when.
	badSemMu   sync.Mutex
	badSemLast string
	badSemAt   time.Time

	mu        sync.Mutex
	semNS     uint32 // the observer's IPC namespace: the one /proc/sysvipc/sem shows
	netNS     uint32
	sems      map[semKey]*semEntry
	semLimits SemLimits
	veths     map[int32]*vethEntry
	creators  *creatorCache // veth creators by ifindex, from events
	errors    map[string]string
	scanned   bool
	// While a scan runs (between its start and its merge), removals that
	// events report: the scan may have read the object before it went, and
	// must not bring it back.
	scanning    bool
	removedSems map[semKey]bool
	removedVeth map[int32]string // ifindex -> name

	offline *offlineState // nil when live
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
	if opts.readSemProc == nil {
		opts.readSemProc = readSemProc
	}
	if opts.listLinks == nil {
		opts.listLinks = netlink.LinkList
	}
	if opts.netnsID == nil {
		opts.netnsID = netnsIDOf
	}
	if opts.namedNetnsDir == "" {
		opts.namedNetnsDir = NamedNetnsDir
	}
	if opts.liveNamespaces == nil {
		opts.liveNamespaces = liveNamespaces
	}
	if opts.processAlive == nil {
		opts.processAlive = processAlive
	}
	if opts.containerOf == nil {
		opts.containerOf = containerOfPid
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	d := &Detector{
		opts:     opts,
		log:      opts.Logger.With("component", "residue"),
		kick:     make(chan struct{}, 1),
		sems:     map[semKey]*semEntry{},
		veths:    map[int32]*vethEntry{},
		creators: newCreatorCache(maxCreators),
		errors:   map[string]string{},
	}
	if opts.Offline {
		d.offline = &offlineState{items: map[string]Item{}}
		d.opts.now = d.offline.now
		return d
	}
	d.semNS, _ = nsInode("/proc/self/ns/ipc")
	d.netNS, _ = nsInode("/proc/self/ns/net")
	return d
}

// Observe takes the sensor events: creations and removals update the
// inventory at once and ask for a rescan.
func (d *Detector) Observe(ev event.Event) {
	if d.offline != nil {
		d.observeOffline(ev)
		return
	}
	switch e := ev.(type) {
	case *event.SemCreate:
		exe := exePath(e.PID) // I/O: before the lock
		d.mu.Lock()
		d.onSemCreate(e, exe)
		d.mu.Unlock()
	case *event.SemRemove:
		d.mu.Lock()
		d.onSemRemove(e)
		d.mu.Unlock()
	case *event.VethChange:
		if !d.hostSide(e) {
			return
		}
		exe := ""
		if e.Type != event.TypeVethDelete {
			exe = exePath(e.PID) // I/O: before the lock
		}
		d.mu.Lock()
		d.onVethEvent(e, exe)
		d.mu.Unlock()
	default:
		return
	}
	d.Kick()
}

// Kick asks Run for a rescan soon.
func (d *Detector) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run scans at once, then every Interval and after events, until ctx ends.
// Link updates from rtnetlink also trigger a scan. Offline, it returns at once.
func (d *Detector) Run(ctx context.Context) {
	if d.offline != nil {
		return
	}
	d.Reconcile(ctx)
	go d.watchLinks(ctx)
	tick := time.NewTicker(d.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.kick:
			// Let a burst of events settle into one scan.
			select {
			case <-ctx.Done():
				return
			case <-time.After(minRescan):
			}
		}
		d.Reconcile(ctx)
	}
}

// Reconcile scans the kernel's state, merges it with what events said, and
// publishes a residue event for every object that became residue. All reads
// (engine, sysvipc, /proc, rtnetlink) happen without d.mu, which is held only
// to list what to check and to merge the results: events and scrapes never
// wait for a scan.
func (d *Detector) Reconcile(ctx context.Context) {
	if d.offline != nil {
		return
	}
	d.scanMu.Lock()
	defer d.scanMu.Unlock()
	// Entries created after start may legitimately be missing from the scan.
	start := d.opts.now()
	d.mu.Lock()
	checks := d.semChecks()
	d.scanning, d.removedSems, d.removedVeth = true, map[semKey]bool{}, map[int32]string{}
	d.mu.Unlock()
	running, engineErr := d.runningContainers(ctx)
	sems := d.scanSems(checks)
	veths := d.scanVeths(running)

	d.mu.Lock()
	d.mergeSems(sems, start)
	d.mergeVeths(start, veths, running, engineErr)
	d.scanning, d.removedSems, d.removedVeth = false, nil, nil
	d.scanned = true
	now := d.opts.now()
	fresh := d.unreportedLocked(now)
	d.mu.Unlock()
	if d.opts.Publish == nil || len(fresh) == 0 {
		return
	}
	// Marked reported only once published: a refused event is retried after
	// the next scan. Entries stay valid meanwhile (scanMu: no merge runs).
	taken := make([]bool, len(fresh))
	for i, f := range fresh {
		taken[i] = d.opts.Publish(f.item.event(now))
	}
	d.mu.Lock()
	for i, f := range fresh {
		switch {
		case !taken[i]:
		case f.sem != nil:
			f.sem.reported = true
		case f.veth != nil:
			f.veth.reported = true
		}
	}
	d.mu.Unlock()
}

// Residue lists what is residue now.
func (d *Detector) Residue() []Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	items := d.currentLocked(d.opts.now())
	if items == nil {
		items = []Item{}
	}
	return items
}

// currentLocked is what is residue at now: decided by the scans, or offline
// as the capture said.
func (d *Detector) currentLocked(now time.Time) []Item {
	if d.offline != nil {
		return d.offlineResidue(now)
	}
	var out []Item
	for _, e := range d.semResidue(now) {
		out = append(out, e.item(now, e.ns == d.semNS))
	}
	for _, e := range d.vethResidue(now) {
		out = append(out, e.item(now))
	}
	return out
}

// unreported is a residue item not yet published, with its entry.
type unreported struct {
	item Item
	sem  *semEntry
	veth *vethEntry
}

// unreportedLocked lists the residue items not yet published.
func (d *Detector) unreportedLocked(now time.Time) []unreported {
	var out []unreported
	for _, e := range d.semResidue(now) {
		if !e.reported {
			out = append(out, unreported{item: e.item(now, e.ns == d.semNS), sem: e})
		}
	}
	for _, e := range d.vethResidue(now) {
		if !e.reported {
			out = append(out, unreported{item: e.item(now), veth: e})
		}
	}
	return out
}

// Report is the /residue document.
func (d *Detector) Report() Report {
	items := d.Residue()
	d.mu.Lock()
	errs := make(map[string]string, len(d.errors))
	for k, v := range d.errors {
		errs[k] = v
	}
	d.mu.Unlock()
	omitted := map[string]int{}
	sortItems(items)
	rep := Report{
		Time:         d.opts.now().UTC(),
		GraceSeconds: d.opts.Grace.Seconds(),
		Residue:      capList(items, "residue", omitted),
		Semaphores:   capList(d.Semaphores(), "semaphores", omitted),
		Veths:        capList(d.Veths(), "veths", omitted),
		Errors:       errs,
	}
	if len(omitted) > 0 {
		rep.Omitted = omitted
	}
	if d.offline != nil {
		rep.GraceSeconds, rep.Offline = 0, true
	}
	return rep
}

// noteError records a scan problem and logs it once per distinct message, so a
// persistent fault is one line, not one per scan.
func (d *Detector) noteError(resource string, err error) {
	msg := err.Error()
	if d.errors[resource] != msg {
		d.log.Warn("residue scan problem", "resource", resource, "err", msg)
	}
	d.errors[resource] = msg
}

func (d *Detector) clearError(resource string) {
	if _, ok := d.errors[resource]; ok {
		d.log.Info("residue scan recovered", "resource", resource)
		delete(d.errors, resource)
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

// sortItems orders items for display: resource, then id or name.
func sortItems(items []Item) {
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
