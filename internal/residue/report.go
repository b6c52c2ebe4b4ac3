package residue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Report is the /residue document: the residue list, then each resource's
// inventory under its section name ("semaphores", "veths"), then the scan
// problems.
type Report struct {
	Time         time.Time `json:"time"`
	GraceSeconds float64   `json:"grace_seconds"`
	Residue      []Item    `json:"residue"`
	// Errors are the last scan problems per resource (empty when the last scan was clean).
	Errors map[string]string `json:"errors,omitempty"`
	// Offline: the report comes from a replayed capture, not from scans (Time
	// is the capture's; the grace period it was judged with is not known here).
	Offline bool `json:"offline,omitempty"`
	// Omitted counts, per list ("residue", "semaphores", "veths"), the items
	// left out past MaxReportItems (the first ones in the lists' order are kept).
	Omitted map[string]int `json:"omitted,omitempty"`

	// inventories by section: a resource's Inventory() in a detector's
	// report, json.RawMessage in a decoded one (see inventoryOf).
	inventories map[string]any
}

// inventorySections are the registered resources' sections, in order.
var inventorySections = sync.OnceValue(func() []string {
	var out []string
	for _, r := range newResources(&env{offline: true}) {
		out = append(out, r.Section())
	}
	return out
})

// MarshalJSON writes the fields in the document's order: time, grace_seconds,
// residue, the inventories, errors, offline, omitted.
func (r Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	put := func(key string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("residue report %s: %w", key, err)
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(raw)
		return nil
	}
	type field struct {
		key  string
		v    any
		omit bool
	}
	fields := []field{{"time", r.Time, false}, {"grace_seconds", r.GraceSeconds, false}, {"residue", r.Residue, false}}
	known := inventorySections()
	for _, s := range known {
		fields = append(fields, field{s, r.inventories[s], false})
	}
	// Lists of resources this build does not know (a newer daemon's) pass through.
	var extra []string
	for s := range r.inventories {
		if !slices.Contains(known, s) {
			extra = append(extra, s)
		}
	}
	slices.Sort(extra)
	for _, s := range extra {
		fields = append(fields, field{s, r.inventories[s], false})
	}
	fields = append(fields,
		field{"errors", r.Errors, len(r.Errors) == 0},
		field{"offline", r.Offline, !r.Offline},
		field{"omitted", r.Omitted, len(r.Omitted) == 0})
	for _, f := range fields {
		if f.omit {
			continue
		}
		if err := put(f.key, f.v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the document back; inventories stay raw until asked for.
func (r *Report) UnmarshalJSON(data []byte) error {
	type plain Report // without the methods
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	p.inventories = map[string]any{}
	for k, v := range all {
		switch k {
		case "time", "grace_seconds", "residue", "errors", "offline", "omitted":
		default:
			p.inventories[k] = v
		}
	}
	*r = Report(p)
	return nil
}

// inventoryOf is a report's inventory of one section as []T (nil when absent
// or unreadable).
func inventoryOf[T any](r Report, section string) []T {
	switch v := r.inventories[section].(type) {
	case []T:
		return v
	case json.RawMessage:
		var out []T
		if json.Unmarshal(v, &out) == nil {
			return out
		}
	}
	return nil
}
