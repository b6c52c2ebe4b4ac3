// Package event defines the typed events that flow from the tracer to every
// consumer, and their JSON form (one object per line, snake_case, flat).
//
// Each event type lives in its own file and registers itself there (see
// Register), so a new sensor's event is one file: decoding, the /events type
// filter and the consumers that use the optional interfaces below follow.
package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
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

// Optional interfaces: consumers (report, incident rules) ask an event for
// these instead of switching on its type.
type (
	// Timed is an event that measures how long something took.
	Timed interface {
		Event
		Duration() time.Duration
	}
	// Summarizer is an event worth a line of its own in a report: Summary is
	// that line, for an operator.
	Summarizer interface {
		Event
		Summary() string
	}
	// Leftover is an event about an object another process left behind (a
	// detector's finding): LeftBy is that process, as far as it is known,
	// which matters more than the finder named in the header.
	Leftover interface {
		Event
		LeftBy() (pid uint32, comm string)
	}
)

// registry maps each event type to a constructor of its Go type, filled by
// each type's file in its init.
var registry = map[string]func() Event{}

// Register makes typ known: Decode builds its events with newEvent and Types
// lists it. Call it from an init; registering a type twice panics.
func Register(typ string, newEvent func() Event) {
	if _, dup := registry[typ]; dup {
		panic("event: type " + typ + " registered twice")
	}
	registry[typ] = newEvent
}

// Types lists every event type this build produces, sorted, for filters to
// check names against.
func Types() []string {
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
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
	newEvent, ok := registry[probe.Type]
	if !ok {
		return nil, fmt.Errorf("decode event: %w %q", ErrUnknownType, probe.Type)
	}
	ev := newEvent()
	if err := json.Unmarshal(line, ev); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", probe.Type, err)
	}
	return ev, nil
}
