package residue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

// ResourceSem is System V semaphore arrays: devicemapper's udev cookies above
// all, which dockerd leaks when it is force-killed mid-operation.
const ResourceSem = "sem"

// Clean classes of semaphore arrays for `observer residue --clean`.
const (
	CleanDMSem = "dm-sem" // devicemapper udev cookie semaphores (the documented manual cleanup)
	CleanSem   = "sem"    // semaphore arrays whose creator is known to have exited, and dm cookies
)

func init() { register(func(e *env) Resource { return newSemResource(e) }) }

type semKey struct {
	ns uint32
	id int32
}

// semEntry is one array the detector knows, from an event or a scan.
type semEntry struct {
	ns         uint32
	id         int32
	key        int32
	nsems      int32
	creator    event.Creator
	startTicks uint64    // creator's start, to tell a reused pid apart
	created    time.Time // event time, or ctime from /proc when found by a scan
	goneAt     time.Time // when the creator was first seen gone
	reported   bool      // the residue event was published
}

// Semaphore is an array as inventories and snapshots show it (plain data).
type Semaphore struct {
	IPCNS     uint32        `json:"ipc_ns"`
	SemID     int32         `json:"semid"`
	Key       string        `json:"key"`
	Kind      string        `json:"kind"`
	NSems     int32         `json:"nsems"`
	Creator   event.Creator `json:"creator"`
	CreatedAt time.Time     `json:"created_at"`
	// CreatorGoneAt is when the creator was first seen gone (zero while alive or unknown).
	CreatorGoneAt time.Time `json:"creator_gone_at,omitzero"`
}

// semResource inventories the arrays of the observer's IPC namespace (from
// /proc/sysvipc/sem) and those of other namespaces that sem events name.
// An array is residue once its creator exited at least grace ago, or, its
// creator unknown, once it is older than grace.
type semResource struct {
	env *env
	ns  uint32 // the observer's IPC namespace: the one /proc/sysvipc/sem shows (0 offline)

	// The kernel's state, replaceable by tests.
	readProc       func() ([]byte, error)
	liveNamespaces func(kind string) map[uint32]uint32
	processAlive   func(pid uint32, startTicks uint64) bool

	// Under the detector's lock.
	entries map[semKey]*semEntry
	limits  SemLimits
	// removed, while a scan runs (between BeginScan and Merge), are the arrays
	// events removed: the scan may have read them before they went, and must
	// not bring them back.
	removed map[semKey]bool

	// badMu guards what warnBadLines last logged, and when.
	badMu   sync.Mutex
	badLast string
	badAt   time.Time
}

func newSemResource(e *env) *semResource {
	r := &semResource{
		env: e, entries: map[semKey]*semEntry{},
		readProc: readSemProc, liveNamespaces: liveNamespaces, processAlive: processAlive,
	}
	if !e.offline {
		r.ns, _ = nsInode("/proc/self/ns/ipc")
	}
	return r
}

func (r *semResource) Name() string    { return ResourceSem }
func (r *semResource) Section() string { return SectionSemaphores }

func readSemProc() ([]byte, error) { return os.ReadFile(SemProcPath) }

// Semaphores is the current inventory of semaphore arrays, sorted by IPC
// namespace and id: plain data, for /residue and flight-recorder snapshots.
func (d *Detector) Semaphores() []Semaphore { return d.Inventory(SectionSemaphores).([]Semaphore) }

// Semaphores is the report's inventory of semaphore arrays.
func (r Report) Semaphores() []Semaphore { return inventoryOf[Semaphore](r, SectionSemaphores) }

// Observe records created and removed arrays.
func (r *semResource) Observe(ev event.Event) func() {
	switch e := ev.(type) {
	case *event.SemCreate:
		exe := exePath(e.PID)
		return func() { r.onCreate(e, exe) }
	case *event.SemRemove:
		return func() { r.onRemove(e) }
	}
	return nil
}

// onCreate records a created array; exe is the creator's executable.
func (r *semResource) onCreate(ev *event.SemCreate, exe string) {
	ns := ev.IPCNS
	if ns == 0 {
		ns = r.ns
	}
	k := semKey{ns, ev.SemID}
	if old, ok := r.entries[k]; ok && old.key == ev.Key && ev.Key != 0 && ev.Flags&unix.IPC_EXCL == 0 {
		return // IPC_CREAT without IPC_EXCL returned the array that already existed
	}
	r.entries[k] = &semEntry{
		ns:    ns,
		id:    ev.SemID,
		key:   ev.Key,
		nsems: ev.NSems,
		creator: event.Creator{
			Known: true, PID: ev.PID, Comm: ev.Comm, Exe: exe, ContainerID: ev.ContainerID,
		},
		startTicks: bootNsToTicks(ev.StartBoottimeNs),
		created:    ev.Time,
	}
}

func (r *semResource) onRemove(ev *event.SemRemove) {
	ns := ev.IPCNS
	if ns == 0 {
		ns = r.ns
	}
	delete(r.entries, semKey{ns, ev.SemID})
	if r.removed != nil {
		r.removed[semKey{ns, ev.SemID}] = true
	}
}

// semCheck is one inventory entry whose creator or namespace a scan checks.
type semCheck struct {
	e          *semEntry
	ns         uint32
	pid        uint32
	startTicks uint64
	alive      bool // check the creator (known, not yet seen gone)
}

// semScan is one scan: what to check, listed under the lock, and what the
// kernel said, read without it.
type semScan struct {
	r      *semResource
	checks []semCheck

	arrays    []SemArray // the observer's own IPC namespace, when readErr is nil
	readErr   error
	limits    SemLimits
	limitsErr error
	haveLimit bool
	// Creators checked: the entries as they were when the check began (by
	// pointer: an entry replaced meanwhile is left for the next scan).
	gone   map[*semEntry]bool // creator exited
	deadNS map[*semEntry]bool // array of another namespace with no process left
}

// BeginScan lists the entries whose creator or namespace the scan checks.
func (r *semResource) BeginScan() Scan {
	sc := &semScan{r: r}
	for k, e := range r.entries {
		alive := e.creator.Known && e.goneAt.IsZero()
		if k.ns != r.ns || alive {
			sc.checks = append(sc.checks, semCheck{e: e, ns: k.ns, pid: e.creator.PID, startTicks: e.startTicks, alive: alive})
		}
	}
	r.removed = map[semKey]bool{}
	return sc
}

// Read reads /proc/sysvipc/sem and kernel.sem, and checks the creators and
// namespaces: all the I/O of a semaphore scan.
func (sc *semScan) Read(context.Context) {
	r := sc.r
	data, err := r.readProc()
	if err != nil {
		sc.readErr = fmt.Errorf("read %s: %w", SemProcPath, err)
	} else {
		arrays, bad, err := ParseSemProc(bytes.NewReader(data))
		r.warnBadLines(bad)
		sc.arrays, sc.readErr = arrays, err
	}
	if data, err := os.ReadFile("/proc/sys/kernel/sem"); err == nil {
		sc.limits, sc.limitsErr = ParseSemLimits(string(data))
		sc.haveLimit = sc.limitsErr == nil
	}
	sc.gone, sc.deadNS = map[*semEntry]bool{}, map[*semEntry]bool{}
	var live map[uint32]uint32
	for _, c := range sc.checks {
		if c.ns != r.ns {
			if live == nil {
				live = r.liveNamespaces("ipc")
			}
			if _, ok := live[c.ns]; !ok {
				sc.deadNS[c.e] = true
				continue
			}
		}
		if c.alive && !r.processAlive(c.pid, c.startTicks) {
			sc.gone[c.e] = true
		}
	}
}

// Merge makes the inventory of the observer's own IPC namespace agree with
// the scan, and notes creators that are gone.
func (sc *semScan) Merge(start time.Time) {
	r := sc.r
	if sc.readErr != nil {
		r.env.noteError(ResourceSem, sc.readErr)
	} else {
		r.mergeArrays(sc.arrays, start)
	}
	if sc.haveLimit {
		r.limits = sc.limits
	} else if sc.limitsErr != nil {
		r.env.noteError(ResourceSem, sc.limitsErr)
	}
	r.sweepCreators(sc, start)
	r.removed = nil
}

func (r *semResource) mergeArrays(arrays []SemArray, scanStart time.Time) {
	seen := make(map[int32]SemArray, len(arrays))
	for _, a := range arrays {
		seen[a.SemID] = a
	}
	for k, e := range r.entries {
		if k.ns != r.ns {
			continue
		}
		a, ok := seen[k.id]
		// An entry created after the scan began may legitimately be missing from it.
		if (!ok || a.Key != e.key) && e.created.Before(scanStart) {
			delete(r.entries, k)
		}
	}
	for _, a := range arrays {
		k := semKey{r.ns, a.SemID}
		if _, ok := r.entries[k]; ok || r.removed[k] {
			continue // known, or removed after the scan read it
		}
		created := a.CTime
		if created.IsZero() {
			created = scanStart
		}
		r.entries[k] = &semEntry{ns: r.ns, id: a.SemID, key: a.Key, nsems: a.NSems, created: created}
	}
}

// sweepCreators notes creators that exited, and forgets arrays of other IPC
// namespaces once no process is left in them (the kernel freed them with the
// namespace; /proc/sysvipc/sem only shows the observer's own namespace). Only
// entries still as they were when the scan checked them are touched.
func (r *semResource) sweepCreators(sc *semScan, now time.Time) {
	for k, e := range r.entries {
		if sc.deadNS[e] {
			delete(r.entries, k)
			continue
		}
		if sc.gone[e] && e.goneAt.IsZero() {
			e.goneAt = now
		}
	}
}

// Findings are the arrays that are residue at now: the creator exited at
// least grace ago, or the creator is unknown and the array is older than grace.
func (r *semResource) Findings(now time.Time) []Finding {
	var found []*semEntry
	for _, e := range r.entries {
		switch {
		case e.creator.Known && !e.goneAt.IsZero() && now.Sub(e.goneAt) >= r.env.grace:
		case !e.creator.Known && now.Sub(e.created) >= r.env.grace:
		default:
			continue
		}
		found = append(found, e)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].id < found[j].id })
	out := make([]Finding, len(found))
	for i, e := range found {
		out[i] = Finding{Item: e.item(now, e.ns == r.ns), Reported: &e.reported}
	}
	return out
}

func (e *semEntry) item(now time.Time, ownNS bool) Item {
	id := e.id
	it := Item{
		Resource:  ResourceSem,
		Kind:      SemKind(e.key),
		SemID:     &id,
		Key:       FormatKey(e.key),
		IPCNS:     e.ns,
		Creator:   e.creator,
		Since:     e.created,
		Age:       now.Sub(e.created).Round(time.Second).String(),
		AgeSecond: now.Sub(e.created).Seconds(),
	}
	if e.creator.Known {
		it.Reason = fmt.Sprintf("creator %s (pid %d) exited without removing it", e.creator.Comm, e.creator.PID)
	} else {
		it.Reason = "creator unknown: the array existed before the observer started"
	}
	if ownNS {
		it.Remove = fmt.Sprintf("ipcrm -s %d", e.id)
	} else {
		it.Remove = fmt.Sprintf("nsenter --ipc=/proc/<pid in ipc ns %d>/ns/ipc ipcrm -s %d", e.ns, e.id)
	}
	return it
}

// Inventory is []Semaphore, by IPC namespace and id.
func (r *semResource) Inventory() any {
	out := make([]Semaphore, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, Semaphore{
			IPCNS: e.ns, SemID: e.id, Key: FormatKey(e.key), Kind: SemKind(e.key), NSems: e.nsems,
			Creator: e.creator, CreatedAt: e.created, CreatorGoneAt: e.goneAt,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IPCNS != out[j].IPCNS {
			return out[i].IPCNS < out[j].IPCNS
		}
		return out[i].SemID < out[j].SemID
	})
	return out
}

// Replay follows a capture's sem events.
func (r *semResource) Replay(ev event.Event) (func(Item) bool, bool) {
	forget := func(ns uint32, id int32) func(Item) bool {
		return func(it Item) bool { return it.IPCNS == ns && it.SemID != nil && *it.SemID == id }
	}
	switch e := ev.(type) {
	case *event.SemCreate:
		k := semKey{e.IPCNS, e.SemID}
		if old, ok := r.entries[k]; ok && old.key == e.Key && (old.creator.PID == e.PID || e.Flags&unix.IPC_EXCL == 0) {
			return nil, true // known already (from a snapshot, which may know more: the creator gone)
		}
		// No executable: /proc/<pid>/exe here is another machine's process.
		r.entries[k] = &semEntry{
			ns: e.IPCNS, id: e.SemID, key: e.Key, nsems: e.NSems, created: e.Time,
			creator: event.Creator{Known: true, PID: e.PID, Comm: e.Comm, ContainerID: e.ContainerID},
		}
		return forget(e.IPCNS, e.SemID), true
	case *event.SemRemove:
		delete(r.entries, semKey{e.IPCNS, e.SemID})
		return forget(e.IPCNS, e.SemID), true
	}
	return nil, false
}

// Restore replaces the inventory with a snapshot's []Semaphore.
func (r *semResource) Restore(section json.RawMessage) error {
	var sems []Semaphore
	if err := json.Unmarshal(section, &sems); err != nil {
		return err
	}
	r.entries = make(map[semKey]*semEntry, len(sems))
	for _, s := range sems {
		key, _ := parseKey(s.Key)
		r.entries[semKey{s.IPCNS, s.SemID}] = &semEntry{
			ns: s.IPCNS, id: s.SemID, key: key, nsems: s.NSems, creator: s.Creator,
			created: s.CreatedAt, goneAt: s.CreatorGoneAt,
		}
	}
	return nil
}

// parseKey reads a key as FormatKey prints it.
func parseKey(s string) (int32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	return int32(uint32(v)), err
}

// maxNSLabels bounds the ipc_ns label; further namespaces count under "other".
const maxNSLabels = 256

var (
	semArraysDesc = prometheus.NewDesc("observer_sem_arrays",
		"System V semaphore arrays known, by IPC namespace inode (the observer's own namespace is scanned; others are known from events).",
		[]string{"ipc_ns"}, nil)
	semLimitDesc = prometheus.NewDesc("observer_sem_arrays_limit",
		"SEMMNI, the most semaphore arrays the observer's IPC namespace may hold (4th field of /proc/sys/kernel/sem).",
		nil, nil)
	semRatioDesc = prometheus.NewDesc("observer_sem_arrays_used_ratio",
		"Semaphore arrays in the observer's IPC namespace divided by SEMMNI; at 1 semget(2) fails with ENOSPC (dockerd with devicemapper cannot start).",
		nil, nil)
	semResidueDesc = prometheus.NewDesc("observer_sem_residue_arrays",
		"Semaphore arrays left behind: creator exited (or unknown) and not removed after the grace period.",
		[]string{"kind"}, nil)
)

func (r *semResource) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{semArraysDesc, semLimitDesc, semRatioDesc, semResidueDesc} {
		ch <- desc
	}
}

func (r *semResource) Collect(ch chan<- prometheus.Metric, residue []Item) {
	counts, ownCount := r.arraysByNS()
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(semArraysDesc, prometheus.GaugeValue, float64(c.n), c.label)
	}
	if r.limits.SEMMNI > 0 {
		ch <- prometheus.MustNewConstMetric(semLimitDesc, prometheus.GaugeValue, float64(r.limits.SEMMNI))
		ch <- prometheus.MustNewConstMetric(semRatioDesc, prometheus.GaugeValue, float64(ownCount)/float64(r.limits.SEMMNI))
	}
	byKind := map[string]int{KindDMUdevCookie: 0, KindOther: 0}
	for _, it := range residue {
		if _, ok := byKind[it.Kind]; ok {
			byKind[it.Kind]++
		} else {
			byKind[KindOther]++ // a capture from a build with other kinds: keep the label set bounded
		}
	}
	for k, n := range byKind {
		ch <- prometheus.MustNewConstMetric(semResidueDesc, prometheus.GaugeValue, float64(n), k)
	}
}

type nsCount struct {
	label string
	n     int
}

// arraysByNS counts arrays per IPC namespace for observer_sem_arrays with a
// label set that does not depend on map order: first the observer's own
// namespace (live only) with its real count, always; then the others by inode,
// the lowest while labels last (maxNSLabels in all); the rest summed as "other".
func (r *semResource) arraysByNS() (counts []nsCount, own int) {
	live := !r.env.offline
	perNS := map[uint32]int{}
	for k := range r.entries {
		if live && k.ns == r.ns {
			own++
		} else {
			perNS[k.ns]++
		}
	}
	if live {
		counts = append(counts, nsCount{strconv.FormatUint(uint64(r.ns), 10), own})
	}
	nss := make([]uint32, 0, len(perNS))
	for ns := range perNS {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	room := maxNSLabels - len(counts)
	if len(nss) > room {
		room-- // keep a label for "other"
	}
	rest := 0
	for i, ns := range nss {
		if i < room {
			counts = append(counts, nsCount{strconv.FormatUint(uint64(ns), 10), perNS[ns]})
		} else {
			rest += perNS[ns]
		}
	}
	if rest > 0 {
		counts = append(counts, nsCount{"other", rest})
	}
	return counts, own
}

func (r *semResource) CleanClasses() []string { return []string{CleanDMSem, CleanSem} }

func (r *semResource) Cleanable(it Item, class string) (bool, string) {
	switch class {
	case CleanDMSem:
		return it.Kind == KindDMUdevCookie, ""
	case CleanSem:
		if !it.Creator.Known && it.Kind != KindDMUdevCookie {
			return false, "creator unknown: it may belong to a running program; remove it by hand if you know it is leaked"
		}
		return true, ""
	}
	return false, ""
}

func (r *semResource) Label(it Item) string {
	if it.SemID == nil {
		return it.Name
	}
	return fmt.Sprintf("semaphore %d (key %s)", *it.SemID, it.Key)
}

// Remove removes the array if it is still the reported one (same semid and
// key) and in this IPC namespace.
func (r *semResource) Remove(it Item) (string, error) {
	label := r.Label(it)
	if it.SemID == nil {
		return label, fmt.Errorf("no semid")
	}
	if it.IPCNS != 0 && r.ns != 0 && it.IPCNS != r.ns {
		return label, &SkipError{fmt.Sprintf("in IPC namespace %d, not this one", it.IPCNS)}
	}
	id := *it.SemID
	data, err := r.readProc()
	if err != nil {
		return label, err
	}
	arrays, _, err := ParseSemProc(bytes.NewReader(data))
	if err != nil {
		return label, err
	}
	for _, a := range arrays {
		if a.SemID == id {
			if FormatKey(a.Key) != it.Key {
				return label, fmt.Errorf("semid %d now has key %s: not the reported array", id, FormatKey(a.Key))
			}
			return label, semRemove(id)
		}
	}
	return label, fmt.Errorf("semid %d is already gone", id)
}

// OneOff: an array's age is its ctime, so it counts once older than grace.
func (r *semResource) OneOff(it Item, grace time.Duration) (Item, bool) {
	return it, it.AgeSecond >= grace.Seconds()
}

// badSemRepeat is how often the same unreadable lines are logged again.
const badSemRepeat = time.Hour

// warnBadLines logs the unreadable lines of a scan (a bounded list: a few
// quoted, the rest counted) when they differ from the last scan's, and the
// same ones again at most once per badSemRepeat: a bad file is a few lines
// per hour, not a flood at every scan.
func (r *semResource) warnBadLines(bad []string) {
	sig := strings.Join(bad, "\n")
	now := r.env.now()
	r.badMu.Lock()
	same := sig == r.badLast && now.Sub(r.badAt) < badSemRepeat
	if !same {
		r.badLast, r.badAt = sig, now
	}
	r.badMu.Unlock()
	if same {
		return
	}
	for _, b := range bad {
		r.env.log.Warn("skipping unreadable line", "file", SemProcPath, "problem", b, "repeats_logged_every", badSemRepeat)
	}
}
