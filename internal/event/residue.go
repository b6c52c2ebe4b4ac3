package event

// Event types of the residue sensors and detectors.
const (
	TypeSemCreate  = "sem_create"
	TypeSemRemove  = "sem_remove"
	TypeVethCreate = "veth_create"
	TypeVethDelete = "veth_delete"
	TypeResidue    = "residue"
)

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
// The header is the process that asked the kernel.
type VethChange struct {
	Header
	Name    string `json:"name"`
	Ifindex int32  `json:"ifindex"`
	// DevNetNS is the inode of the device's network namespace.
	DevNetNS uint32 `json:"dev_net_ns,omitempty"`
}

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
