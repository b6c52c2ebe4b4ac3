package container

// ContainerCgroups returns the live cgroups that belong to containers: cgroup
// id -> container id. The latency sensor's containers-only mode measures
// exactly these.
func (r *Resolver) ContainerCgroups() map[uint64]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[uint64]string)
	for id, e := range r.idx.entries {
		if e.ctr != "" && e.removed.IsZero() {
			out[id] = e.ctr
		}
	}
	return out
}

// Removed reports whether a cgroup is known to be gone: removed (tracepoint,
// or the kernel no longer knowing the id), whether or not its grace period is
// over. A cgroup the resolver cannot check counts as present.
func (r *Resolver) Removed(cgroupID uint64) bool {
	r.Lookup(cgroupID) // a miss asks the kernel once and caches the answer
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.idx.get(cgroupID)
	return ok && !e.removed.IsZero()
}
