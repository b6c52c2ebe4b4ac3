package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// Per-thread state of the latency and seccomp sensors (bpf/thread.h): task
// storage where the kernel can create it, else a hash keyed by thread id. The
// choice is a probe of the kernel (can it create a task storage map?), made
// once per load, never a kernel version check.
const (
	ThreadStateTaskStorage = "task_storage" // BPF_MAP_TYPE_TASK_STORAGE (5.11+)
	ThreadStateTIDMap      = "tid_map"      // preallocated hash by thread id, emptied at thread exit
)

// maxThreads bounds the tid map: threads that made a syscall (latency) or run
// under a seccomp filter (seccomp) and have not exited. A thread that finds it
// full is counted as a thread_storage overflow and not measured. 32768 is
// pid_max's default; each entry is under 100 bytes, preallocated (about 3 MiB).
const maxThreads = 32768

// haveTaskStorage probes whether this kernel creates task storage maps.
var haveTaskStorage = func() (bool, error) {
	err := features.HaveMapType(ebpf.TaskStorage)
	if errors.Is(err, ebpf.ErrNotSupported) {
		return false, nil
	}
	return err == nil, err
}

// threadStateVariant picks the per-thread state of a sensor whose object
// declares it with THREAD_STATE(name, ...), and shapes the spec for it: the
// map not used keeps one entry (its programs' branch for it is dead code the
// verifier skips), and the programs named with exitProgs (the seccomp
// sensor's thread-exit hooks, needed only to empty the tid map) go when task
// storage frees the state itself.
func threadStateVariant(spec *ebpf.CollectionSpec, name string, force bool, exitProgs string) (string, error) {
	useTID := force
	if !force {
		ok, err := haveTaskStorage()
		if err != nil {
			return "", fmt.Errorf("probe task storage: %w", err)
		}
		useTID = !ok
	}
	tid, storage := spec.Maps[name+"_tid"], spec.Maps[name]
	if tid == nil || storage == nil {
		return "", fmt.Errorf("BPF object lacks the %s thread state maps", name)
	}
	if err := spec.Variables["tid_map"].Set(useTID); err != nil {
		return "", fmt.Errorf("set tid_map: %w", err)
	}
	if !useTID {
		for p, ps := range spec.Programs {
			if exitProgs != "" && strings.HasPrefix(p, exitProgs) {
				delete(spec.Programs, ps.Name)
			}
		}
		return ThreadStateTaskStorage, nil
	}
	tid.MaxEntries = maxThreads
	// Task storage maps cannot be created here: a one-entry hash of the same
	// key and value stands in, which no live instruction uses.
	*storage = ebpf.MapSpec{
		Name:       storage.Name,
		Type:       ebpf.Hash,
		KeySize:    4,
		ValueSize:  tid.ValueSize,
		MaxEntries: 1,
	}
	return ThreadStateTIDMap, nil
}
