// Package sensor holds what the rest of the daemon knows about a sensor: its
// status as plain data, so that consumers need not import the tracer.
package sensor

// Status is what /status, the metrics and captures report for one sensor.
type Status struct {
	Name string `json:"name"`
	// Mode is the attach mode in use (fentry, kprobe, tp_btf, tracepoint), empty when unavailable.
	Mode string `json:"mode,omitempty"`
	// Variant names how the sensor adapted to what the kernel lacks, chosen by
	// probing at load: "task_storage" or "tid_map" (latency, seccomp: where
	// per-thread state lives), "module_btf" or "vmlinux_only" (copyup, veth:
	// which types their kprobes may read). Empty for sensors with one form.
	Variant string `json:"variant,omitempty"`
	// Unavailable gives the reason the sensor is not running.
	Unavailable    string `json:"unavailable,omitempty"`
	EventsReceived uint64 `json:"events_received"`
	// EventsLost counts ring-buffer reservations that failed in the kernel.
	EventsLost   uint64 `json:"events_lost"`
	DecodeErrors uint64 `json:"decode_errors,omitempty"`
}

// Active tells whether the sensor is attached.
func (s Status) Active() bool { return s.Mode != "" }
