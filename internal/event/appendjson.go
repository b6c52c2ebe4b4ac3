package event

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends ev's JSON form to b: byte for byte what encoding/json
// writes for it (appendjson_test.go compares), without reflection for
// rename_exdev, the type that comes at storm rates; other types, and
// anything the fast path does not cover, go through encoding/json.
func AppendJSON(b []byte, ev Event) ([]byte, error) {
	if e, ok := ev.(*RenameExdev); ok && plainTime(e.Time) {
		b = appendHeader(b, &e.Header)
		b = append(b, `,"old_path":`...)
		b = appendString(b, e.OldPath)
		b = append(b, `,"new_path":`...)
		b = appendString(b, e.NewPath)
		b = append(b, `,"flags":`...)
		b = strconv.AppendUint(b, uint64(e.Flags), 10)
		return append(b, '}'), nil
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return b, err
	}
	return append(b, data...), nil
}

// plainTime says whether time.Time.MarshalJSON would write t as RFC3339Nano
// without error (a 4-digit year, an offset in whole minutes).
func plainTime(t time.Time) bool {
	_, off := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && off%60 == 0
}

func appendHeader(b []byte, h *Header) []byte {
	b = append(b, `{"time":"`...)
	b = h.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendString(b, h.Type)
	b = append(b, `,"pid":`...)
	b = strconv.AppendUint(b, uint64(h.PID), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendUint(b, uint64(h.TID), 10)
	b = append(b, `,"comm":`...)
	b = appendString(b, h.Comm)
	b = append(b, `,"cgroup_id":`...)
	b = strconv.AppendUint(b, h.CgroupID, 10)
	b = append(b, `,"container_id":`...)
	b = appendString(b, h.ContainerID)
	if h.ContainerName != "" {
		b = append(b, `,"container_name":`...)
		b = appendString(b, h.ContainerName)
	}
	if h.ContainerImage != "" {
		b = append(b, `,"container_image":`...)
		b = appendString(b, h.ContainerImage)
	}
	for _, f := range [...]struct {
		key, val string
	}{{`,"pod":`, h.Pod}, {`,"pod_namespace":`, h.PodNamespace}, {`,"pod_container":`, h.PodContainer}} {
		if f.val != "" {
			b = append(b, f.key...)
			b = appendString(b, f.val)
		}
	}
	for _, ns := range [...]struct {
		key string
		v   uint32
	}{{`,"mnt_ns":`, h.MntNS}, {`,"ipc_ns":`, h.IPCNS}, {`,"net_ns":`, h.NetNS}} {
		if ns.v != 0 {
			b = append(b, ns.key...)
			b = strconv.AppendUint(b, uint64(ns.v), 10)
		}
	}
	return b
}

// appendString quotes s as encoding/json does. Printable ASCII other than
// the characters it escapes (quote, backslash, and <, >, & for HTML) is
// copied; anything else is left to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
