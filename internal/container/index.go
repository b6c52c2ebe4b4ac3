package container

import "time"

// maxEntries bounds the cgroup index; a busy host has a few thousand cgroups,
// and removed ones are evicted first.
const maxEntries = 65536

// entry is what the index knows about one cgroup id.
type entry struct {
	ctr     string    // container id, "" for a host cgroup
	removed time.Time // zero while the cgroup exists
}

// refs counts the index entries that point at one container.
type refs struct{ live, removed int }

// removal is a queued expiry, in the order cgroups were removed.
type removal struct {
	id uint64
	at time.Time
}

// index maps cgroup ids to container ids. It is not safe for concurrent use;
// the Resolver guards it. Removed entries stay for grace so events still in
// flight from exited processes resolve, then expire in removal order.
type index struct {
	max     int
	grace   time.Duration
	entries map[uint64]entry
	ctrs    map[string]*refs
	queue   []removal
}

func newIndex(max int, grace time.Duration) *index {
	return &index{max: max, grace: grace, entries: make(map[uint64]entry), ctrs: make(map[string]*refs)}
}

func (x *index) get(id uint64) (entry, bool) {
	e, ok := x.entries[id]
	return e, ok
}

// add records a live cgroup. With soft set (walk, handle fallback) an existing
// entry wins: the tracepoint events are the authority, and a soft answer may
// be older than an rmdir already seen. It returns containers that became gone
// while making room.
func (x *index) add(id uint64, ctr string, soft bool) (gone []string) {
	if old, ok := x.entries[id]; ok {
		if soft || (old.ctr == ctr && old.removed.IsZero()) {
			return nil
		}
		x.drop(id, old)
	} else {
		gone = x.makeRoom()
	}
	x.entries[id] = entry{ctr: ctr}
	x.ref(ctr).live++
	return gone
}

// remove marks a cgroup removed at now; an unknown id (its mkdir predates us
// or was lost) is inserted as removed so late events still resolve.
func (x *index) remove(id uint64, ctr string, now time.Time) (gone []string) {
	old, ok := x.entries[id]
	switch {
	case ok && !old.removed.IsZero():
		return nil
	case ok:
		x.drop(id, old)
		ctr = old.ctr
	default:
		gone = x.makeRoom()
	}
	x.entries[id] = entry{ctr: ctr, removed: now}
	x.ref(ctr).removed++
	x.queue = append(x.queue, removal{id: id, at: now})
	if len(x.queue) > 2*x.max { // only repeated remove/re-add of one id gets here
		x.compact()
	}
	return gone
}

// expire deletes entries removed more than grace before now and returns the
// containers whose last entry went with them.
func (x *index) expire(now time.Time) (gone []string) {
	for len(x.queue) > 0 && now.Sub(x.queue[0].at) >= x.grace {
		gone = append(gone, x.popRemoved()...)
	}
	return gone
}

// makeRoom evicts one entry when the index is full: the oldest removed one,
// else a live host cgroup, else any (Lookup can re-resolve it via its handle).
func (x *index) makeRoom() (gone []string) {
	for len(x.entries) >= x.max && len(x.queue) > 0 {
		gone = append(gone, x.popRemoved()...)
	}
	if len(x.entries) < x.max {
		return gone
	}
	var victim uint64
	found := false
	n := 0
	for id, e := range x.entries { // map order is random: a cheap random sample
		if !found || e.ctr == "" {
			victim, found = id, true
		}
		if n++; e.ctr == "" || n >= 64 {
			break
		}
	}
	if found {
		x.drop(victim, x.entries[victim])
	}
	return gone
}

// popRemoved drops the head of the removal queue if it is still current.
func (x *index) popRemoved() (gone []string) {
	r := x.queue[0]
	x.queue[0] = removal{}
	x.queue = x.queue[1:]
	e, ok := x.entries[r.id]
	if !ok || !e.removed.Equal(r.at) {
		return nil // re-added or already evicted
	}
	if x.drop(r.id, e) {
		return []string{e.ctr}
	}
	return nil
}

// drop deletes one entry and reports whether it was the last trace of a
// container with no live cgroups left.
func (x *index) drop(id uint64, e entry) bool {
	delete(x.entries, id)
	if e.ctr == "" {
		return false
	}
	rc := x.ctrs[e.ctr]
	if rc == nil {
		return false
	}
	if e.removed.IsZero() {
		rc.live--
	} else {
		rc.removed--
	}
	if rc.live > 0 || rc.removed > 0 {
		return false
	}
	delete(x.ctrs, e.ctr)
	return !e.removed.IsZero()
}

func (x *index) ref(ctr string) *refs {
	if ctr == "" {
		return &refs{} // host cgroups are not counted
	}
	rc := x.ctrs[ctr]
	if rc == nil {
		rc = &refs{}
		x.ctrs[ctr] = rc
	}
	return rc
}

// compact drops queue items whose entries were re-added or evicted.
func (x *index) compact() {
	q := make([]removal, 0, len(x.entries))
	for _, r := range x.queue {
		if e, ok := x.entries[r.id]; ok && e.removed.Equal(r.at) {
			q = append(q, r)
		}
	}
	x.queue = q
}

// holds reports whether any entry, live or in grace, points at ctr.
func (x *index) holds(ctr string) bool {
	_, ok := x.ctrs[ctr]
	return ok
}

// liveContainers returns the ids of containers with existing cgroups.
func (x *index) liveContainers() []string {
	ids := make([]string, 0, len(x.ctrs))
	for id, rc := range x.ctrs {
		if rc.live > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}
