package residue

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
)

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

func readSemProc() ([]byte, error) { return os.ReadFile(SemProcPath) }

// onSemCreate records a created array; exe is the creator's executable, read
// by the caller before it took d.mu.
func (d *Detector) onSemCreate(ev *event.SemCreate, exe string) {
	ns := ev.IPCNS
	if ns == 0 {
		ns = d.semNS
	}
	k := semKey{ns, ev.SemID}
	if old, ok := d.sems[k]; ok && old.key == ev.Key && ev.Key != 0 && ev.Flags&unix.IPC_EXCL == 0 {
		return // IPC_CREAT without IPC_EXCL returned the array that already existed
	}
	d.sems[k] = &semEntry{
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

func (d *Detector) onSemRemove(ev *event.SemRemove) {
	ns := ev.IPCNS
	if ns == 0 {
		ns = d.semNS
	}
	delete(d.sems, semKey{ns, ev.SemID})
	if d.scanning {
		d.removedSems[semKey{ns, ev.SemID}] = true
	}
}

// semScan is what a scan read about semaphore arrays, gathered without d.mu.
type semScan struct {
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

// semCheck is one inventory entry whose creator or namespace a scan checks.
type semCheck struct {
	e          *semEntry
	ns         uint32
	pid        uint32
	startTicks uint64
	alive      bool // check the creator (known, not yet seen gone)
}

// semChecks lists, under d.mu, the entries a scan must check outside it.
func (d *Detector) semChecks() []semCheck {
	var out []semCheck
	for k, e := range d.sems {
		alive := e.creator.Known && e.goneAt.IsZero()
		if k.ns != d.semNS || alive {
			out = append(out, semCheck{e: e, ns: k.ns, pid: e.creator.PID, startTicks: e.startTicks, alive: alive})
		}
	}
	return out
}

// scanSems reads /proc/sysvipc/sem and kernel.sem, and checks the creators
// and namespaces of checks: all the I/O of a semaphore scan, without d.mu.
func (d *Detector) scanSems(checks []semCheck) semScan {
	var sc semScan
	data, err := d.opts.readSemProc()
	if err != nil {
		sc.readErr = fmt.Errorf("read %s: %w", SemProcPath, err)
	} else {
		arrays, bad, err := ParseSemProc(bytes.NewReader(data))
		d.warnBadSemLines(bad)
		sc.arrays, sc.readErr = arrays, err
	}
	if data, err := os.ReadFile("/proc/sys/kernel/sem"); err == nil {
		sc.limits, sc.limitsErr = ParseSemLimits(string(data))
		sc.haveLimit = sc.limitsErr == nil
	}
	sc.gone, sc.deadNS = map[*semEntry]bool{}, map[*semEntry]bool{}
	var live map[uint32]uint32
	for _, c := range checks {
		if c.ns != d.semNS {
			if live == nil {
				live = d.opts.liveNamespaces("ipc")
			}
			if _, ok := live[c.ns]; !ok {
				sc.deadNS[c.e] = true
				continue
			}
		}
		if c.alive && !d.opts.processAlive(c.pid, c.startTicks) {
			sc.gone[c.e] = true
		}
	}
	return sc
}

// mergeSems makes the inventory of the observer's own IPC namespace agree
// with the scan that began at scanStart, and notes creators that are gone.
// Called with d.mu held; it does no I/O.
func (d *Detector) mergeSems(sc semScan, scanStart time.Time) {
	if sc.readErr != nil {
		d.noteError("sem", sc.readErr)
	} else {
		d.mergeSemScan(sc.arrays, scanStart)
	}
	if sc.haveLimit {
		d.semLimits = sc.limits
	} else if sc.limitsErr != nil {
		d.noteError("sem", sc.limitsErr)
	}
	d.sweepSemCreators(sc, scanStart)
}

func (d *Detector) mergeSemScan(arrays []SemArray, scanStart time.Time) {
	seen := make(map[int32]SemArray, len(arrays))
	for _, a := range arrays {
		seen[a.SemID] = a
	}
	for k, e := range d.sems {
		if k.ns != d.semNS {
			continue
		}
		a, ok := seen[k.id]
		// An entry created after the scan began may legitimately be missing from it.
		if (!ok || a.Key != e.key) && e.created.Before(scanStart) {
			delete(d.sems, k)
		}
	}
	for _, a := range arrays {
		k := semKey{d.semNS, a.SemID}
		if _, ok := d.sems[k]; ok || d.removedSems[k] {
			continue // known, or removed after the scan read it
		}
		created := a.CTime
		if created.IsZero() {
			created = scanStart
		}
		d.sems[k] = &semEntry{ns: d.semNS, id: a.SemID, key: a.Key, nsems: a.NSems, created: created}
	}
}

// sweepSemCreators notes creators that exited, and forgets arrays of other IPC
// namespaces once no process is left in them (the kernel freed them with the
// namespace; /proc/sysvipc/sem only shows the observer's own namespace). Only
// entries still as they were when the scan checked them are touched.
func (d *Detector) sweepSemCreators(sc semScan, now time.Time) {
	for k, e := range d.sems {
		if sc.deadNS[e] {
			delete(d.sems, k)
			continue
		}
		if sc.gone[e] && e.goneAt.IsZero() {
			e.goneAt = now
		}
	}
}

// semResidue returns the arrays that are residue at now: the creator exited
// at least grace ago, or the creator is unknown and the array is older than grace.
func (d *Detector) semResidue(now time.Time) []*semEntry {
	var out []*semEntry
	for _, e := range d.sems {
		switch {
		case e.creator.Known && !e.goneAt.IsZero() && now.Sub(e.goneAt) >= d.opts.Grace:
		case !e.creator.Known && now.Sub(e.created) >= d.opts.Grace:
		default:
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
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

// Semaphores is the current inventory of semaphore arrays, sorted by IPC
// namespace and id: plain data, for /residue and flight-recorder snapshots.
func (d *Detector) Semaphores() []Semaphore {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Semaphore, 0, len(d.sems))
	for _, e := range d.sems {
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

// badSemRepeat is how often the same unreadable lines are logged again.
const badSemRepeat = time.Hour

// warnBadSemLines logs the unreadable lines of a scan (a bounded list: a few
// quoted, the rest counted) when they differ from the last scan's, and the
// same ones again at most once per badSemRepeat: a bad file is a few lines
// per hour, not a flood at every scan.
func (d *Detector) warnBadSemLines(bad []string) {
	sig := strings.Join(bad, "\n")
	now := d.opts.now()
	d.badSemMu.Lock()
	same := sig == d.badSemLast && now.Sub(d.badSemAt) < badSemRepeat
	if !same {
		d.badSemLast, d.badSemAt = sig, now
	}
	d.badSemMu.Unlock()
	if same {
		return
	}
	for _, b := range bad {
		d.log.Warn("skipping unreadable line", "file", SemProcPath, "problem", b, "repeats_logged_every", badSemRepeat)
	}
}
