// Package event defines the typed events that flow from the tracer to every
// consumer, and their JSON form (one object per line, snake_case, flat).
package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event types, as they appear in the "type" field.
const (
	TypeRenameExdev = "rename_exdev"
	TypeSignal      = "signal"
	TypeDaemonExit  = "daemon_exit"
	TypeCgroupMkdir = "cgroup_mkdir"
	TypeCgroupRmdir = "cgroup_rmdir"
)

// Header is common to every event. It describes the task that was current in the
// kernel when the event happened, and the container it belongs to.
type Header struct {
	Time           time.Time `json:"time"`
	Type           string    `json:"type"`
	PID            uint32    `json:"pid"`
	TID            uint32    `json:"tid"`
	Comm           string    `json:"comm"`
	CgroupID       uint64    `json:"cgroup_id"`
	ContainerID    string    `json:"container_id"`
	ContainerName  string    `json:"container_name,omitempty"`
	ContainerImage string    `json:"container_image,omitempty"`
	// Pod, PodNamespace and PodContainer come from the kubelet's Docker
	// labels (io.kubernetes.*), when the container has them.
	Pod          string `json:"pod,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
	PodContainer string `json:"pod_container,omitempty"`
	MntNS        uint32 `json:"mnt_ns,omitempty"`
	IPCNS        uint32 `json:"ipc_ns,omitempty"`
	NetNS        uint32 `json:"net_ns,omitempty"`
}

// Event is implemented by every event type through its embedded Header.
type Event interface {
	Hdr() *Header
}

// Hdr returns the common header.
func (h *Header) Hdr() *Header { return h }

// RenameExdev is a rename(2), renameat(2) or renameat2(2) that failed with EXDEV,
// e.g. a directory rename on overlayfs without redirect_dir.
type RenameExdev struct {
	Header
	OldPath string `json:"old_path"`
	NewPath string `json:"new_path"`
	Flags   uint32 `json:"flags"`
}

// Signal is a signal whose default action kills, generated for a watched daemon.
// The header describes the sender (the current task when the kernel generated it).
type Signal struct {
	Header
	Signal      string `json:"signal"`
	Signo       int32  `json:"signo"`
	SenderPID   uint32 `json:"sender_pid"`
	SenderComm  string `json:"sender_comm"`
	TargetPID   uint32 `json:"target_pid"`
	TargetComm  string `json:"target_comm"`
	Disposition string `json:"disposition"` // default (fatal), ignored, handled or unknown
	Result      string `json:"result"`      // delivered, ignored, already_pending, overflow_fail, lose_info
}

// DaemonExit is the exit of a watched daemon's process.
type DaemonExit struct {
	Header
	ExitCode   int32  `json:"exit_code"`        // exit status when it exited by itself
	Signal     string `json:"signal,omitempty"` // terminating signal, if any
	Signo      int32  `json:"signo,omitempty"`
	CoreDumped bool   `json:"core_dumped,omitempty"`
}

// CgroupChange is a cgroup v2 directory created or removed. It feeds container
// correlation and is not published to users.
type CgroupChange struct {
	Header
	ID   uint64 `json:"id"`
	Path string `json:"path"`
}

// Types lists every event type this build produces, for filters to check
// names against.
func Types() []string {
	return []string{TypeRenameExdev, TypeSignal, TypeDaemonExit, TypeCgroupMkdir, TypeCgroupRmdir, TypeCopyUp,
		TypeSemCreate, TypeSemRemove, TypeVethCreate, TypeVethDelete, TypeResidue}
}

// Decode parses one JSON event line back into its typed form, for captures and
// replay. Unknown types are an error wrapping ErrUnknownType (DecodeOrKeep keeps
// them), never a panic.
func Decode(line []byte) (Event, error) {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	var ev Event
	switch probe.Type {
	case TypeRenameExdev:
		ev = &RenameExdev{}
	case TypeSignal:
		ev = &Signal{}
	case TypeDaemonExit:
		ev = &DaemonExit{}
	case TypeCgroupMkdir, TypeCgroupRmdir:
		ev = &CgroupChange{}
	case TypeCopyUp:
		ev = &CopyUp{}
	case TypeSemCreate:
		ev = &SemCreate{}
	case TypeSemRemove:
		ev = &SemRemove{}
	case TypeVethCreate, TypeVethDelete:
		ev = &VethChange{}
	case TypeResidue:
		ev = &Residue{}
	default:
		return nil, fmt.Errorf("decode event: %w %q", ErrUnknownType, probe.Type)
	}
	if err := json.Unmarshal(line, ev); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", probe.Type, err)
	}
	return ev, nil
}
