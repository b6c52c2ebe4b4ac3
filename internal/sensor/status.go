// Package sensor holds what the rest of the daemon knows about a sensor: its
// status as plain data, so that consumers need not import the tracer.
package sensor

// Status is what /status, the metrics and captures report for one sensor.
type Status struct {
	Name string `json:"name"`
	// Mode is the attach mode in use (fentry, kprobe, tp_btf, tracepoint), empty when unavailable.
	Mode string `json:"mode,omitempty"`
	// Unavailable gives the reason the sensor is not running.
	Unavailable    string `json:"unavailable,omitempty"`
	EventsReceived uint64 `json:"events_received"`
	// EventsLost counts ring-buffer reservations that failed in the kernel.
	EventsLost   uint64 `json:"events_lost"`
	DecodeErrors uint64 `json:"decode_errors,omitempty"`
}

// Active tells whether the sensor is attached.
func (s Status) Active() bool { return s.Mode != "" }
