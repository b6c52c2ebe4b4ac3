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
