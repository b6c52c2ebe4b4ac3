package event

import "fmt"

// Event types of the residue sensors and detectors.
const (
	TypeSemCreate  = "sem_create"
	TypeSemRemove  = "sem_remove"
	TypeVethCreate = "veth_create"
	TypeVethDelete = "veth_delete"
	TypeResidue    = "residue"
)

func init() {
	Register(TypeSemCreate, func() Event { return new(SemCreate) })
	Register(TypeSemRemove, func() Event { return new(SemRemove) })
	Register(TypeVethCreate, func() Event { return new(VethChange) })
	Register(TypeVethDelete, func() Event { return new(VethChange) })
	Register(TypeResidue, func() Event { return new(Residue) })
}

// SemCreate is a successful semget(2) that may have created a System V
// semaphore array (IPC_CREAT or IPC_PRIVATE). The header is the caller.
type SemCreate struct {
	Header
	SemID int32 `json:"semid"`
	Key   int32 `json:"key"`
	NSems int32 `json:"nsems"`
	Flags int32 `json:"flags"`
	// StartBoottimeNs is the calling process's start (ns since boot), which
	// tells a reused pid apart from the creator.
	StartBoottimeNs uint64 `json:"start_boottime_ns"`
}

// SemRemove is a successful semctl(2, IPC_RMID).
type SemRemove struct {
	Header
	SemID int32 `json:"semid"`
}

// VethChange is a veth device created (veth_create) or deleted (veth_delete).
// The header is the task that asked the kernel: a process, or a kworker when
// a dying network namespace took its veths with it (ByKernelThread).
type VethChange struct {
	Header
	Name    string `json:"name"`
	Ifindex int32  `json:"ifindex"`
	// DevNetNS is the inode of the device's network namespace.
	DevNetNS uint32 `json:"dev_net_ns,omitempty"`
	// The other end of the pair, when the kernel still had it: deleting one
	// end deletes both, and only the device named above gets an event.
	PeerName    string `json:"peer_name,omitempty"`
	PeerIfindex int32  `json:"peer_ifindex,omitempty"`
	PeerNetNS   uint32 `json:"peer_net_ns,omitempty"`
	// ByKernelThread: a kernel thread made the call, so the header names no
	// process that asked for it.
	ByKernelThread bool `json:"by_kernel_thread,omitempty"`
	// Cause is "netns_teardown" for a veth_delete by a kernel thread: the
	// kernel deletes a dying network namespace's veths from a kworker
	// (cleanup_net); empty when a process asked.
	Cause string `json:"cause,omitempty"`
}

// VethCauseNetNSTeardown is VethChange.Cause when a network namespace's
// teardown deleted the pair.
const VethCauseNetNSTeardown = "netns_teardown"

// Creator describes who created a leftover resource, as far as it is known.
type Creator struct {
	Known       bool   `json:"known"`
	PID         uint32 `json:"pid,omitempty"`
	Comm        string `json:"comm,omitempty"`
	Exe         string `json:"exe,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
}

// Residue is a kernel object left behind: a semaphore array whose creator is
// gone, or a veth whose peer or owner is gone. Published once when the object
// becomes residue. The header's time is when it was found; pid/comm are empty.
type Residue struct {
	Header
	Resource string  `json:"resource"` // sem or veth
	Kind     string  `json:"kind"`     // sem: dm_udev_cookie or other; veth: veth
	Reason   string  `json:"reason"`
	SemID    *int32  `json:"semid,omitempty"`
	Key      string  `json:"key,omitempty"` // sem key in hex, as ipcs prints it
	Name     string  `json:"name,omitempty"`
	Ifindex  int32   `json:"ifindex,omitempty"`
	Creator  Creator `json:"creator"`
	AgeSec   float64 `json:"age_seconds"`
	Remove   string  `json:"remove_command"`
}

// LeftBy is the creator: the process that left the object behind.
func (e *Residue) LeftBy() (pid uint32, comm string) { return e.Creator.PID, e.Creator.Comm }

// Summary is the report's line: what is left, why it counts, how to remove it.
func (e *Residue) Summary() string {
	what := e.Resource + " " + e.Name
	if e.SemID != nil {
		what = fmt.Sprintf("semaphore array %d (key %s, %s)", *e.SemID, e.Key, e.Kind)
	} else if e.Resource == "veth" {
		what = fmt.Sprintf("veth %s (ifindex %d)", e.Name, e.Ifindex)
	}
	return fmt.Sprintf("%s left behind: %s; remove with: %s", what, e.Reason, e.Remove)
}
