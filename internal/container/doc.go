// Package container ties kernel cgroup ids to container ids and, when a Docker
// engine is reachable, to container names and images.
//
// The index is fed three ways: a walk of the cgroup v2 tree at start, the
// cgroup_mkdir/cgroup_rmdir tracepoints while running, and, on a miss, a
// one-off open_by_handle_at on the cgroup2 mount. Names come from the Docker
// Engine API off the hot path; Lookup never waits on the network.
package container
