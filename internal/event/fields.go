package event

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Fields is an event's own fields (header removed), from its JSON form, so
// that any event, even of a type this observer does not know, reads as text.
type Fields map[string]any

var headerKeys = map[string]bool{"time": true, "type": true, "pid": true, "tid": true, "comm": true, "cgroup_id": true,
	"container_id": true, "container_name": true, "container_image": true, "mnt_ns": true, "ipc_ns": true, "net_ns": true}

// FieldsOf is ev's fields, through its JSON form.
func FieldsOf(ev Event) Fields {
	raw, _ := json.Marshal(ev)
	var m map[string]any
	json.Unmarshal(raw, &m)
	for k := range m {
		if headerKeys[k] {
			delete(m, k)
		}
	}
	return m
}

// String is the fields as key=value in key order, cut at 300 bytes.
func (f Fields) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, f[k]))
	}
	s := strings.Join(parts, " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
