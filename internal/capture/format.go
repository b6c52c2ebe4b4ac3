// Package capture is the forensic capture file format: JSON lines in a sequence
// of gzip members. The first record is a self-describing header; then one record
// per event or state snapshot; a complete capture ends with an "end" record.
//
// Every flush closes a gzip member, so a file cut short by a crash or a full disk
// stays readable up to its last complete member, and standard tools read it:
//
//	zcat capture.jsonl.gz | jq 'select(.record == "event") | .event'
package capture

import (
	"encoding/json"
	"time"

	"github.com/observer-dev/observer/internal/sensor"
)

// FormatName is the header's "format" value; it tells a capture from any other
// gzip'd JSON.
const FormatName = "observer-capture"

// Version is the format version this package writes and the newest it reads.
// Readers accept any version up to their own; adding record kinds or fields does
// not change it (readers skip what they do not know), changing a meaning does.
const Version = 1

// Record kinds, the "record" field of every line.
const (
	KindHeader   = "header"
	KindEvent    = "event"
	KindSnapshot = "snapshot"
	KindEnd      = "end"
)

// Header describes the capture and the host it was taken on.
type Header struct {
	Format          string          `json:"format"`
	Version         int             `json:"version"`
	Host            string          `json:"host"`
	Kernel          string          `json:"kernel"`
	ObserverVersion string          `json:"observer_version"`
	Sensors         []sensor.Status `json:"sensors"`
	StartTime       time.Time       `json:"start_time"`
	// Reason is why the capture was taken: "manual", "signal SIGUSR1", or the
	// incident rule that fired with its details.
	Reason string `json:"reason"`
	// Window is the recorder's time bound: events before StartTime-Window were gone.
	WindowSeconds float64 `json:"window_seconds,omitempty"`
}

// Snapshot is the daemon's state at one moment: one section per named provider
// (containers, sensors, host, and whatever detectors add).
type Snapshot struct {
	Time     time.Time                  `json:"time"`
	Reason   string                     `json:"reason"` // periodic, capture_start, capture_end
	Sections map[string]json.RawMessage `json:"sections"`
	// Errors names the providers that failed, with why.
	Errors map[string]string `json:"errors,omitempty"`
}

// End closes a complete capture. Its absence means the capture was cut short.
type End struct {
	Time      time.Time `json:"time"`
	Events    uint64    `json:"events"`
	Snapshots uint64    `json:"snapshots"`
	// Dropped counts events the capture missed because it fell behind.
	Dropped uint64 `json:"dropped"`
	// RecorderDropped counts events the flight recorder missed (its bus queue was
	// full) during its whole life, as of the end of the capture.
	RecorderDropped uint64 `json:"recorder_dropped"`
}

// line is the on-disk envelope of one record.
type line struct {
	Record   string          `json:"record"`
	Header   *Header         `json:"header,omitempty"`
	Event    json.RawMessage `json:"event,omitempty"`
	Snapshot *Snapshot       `json:"snapshot,omitempty"`
	End      *End            `json:"end,omitempty"`
}
