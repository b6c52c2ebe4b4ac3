package tracer

import (
	"bytes"
	"fmt"
	"structs"
	"unsafe"

	"github.com/observer-dev/observer/internal/event"
)

// rawHeader is identical to the Hdr field bpf2go generates for every record type
// (struct event_header), so each record's header converts without copying fields.
type rawHeader = struct {
	_        structs.HostLayout
	TsBootNs uint64
	CgroupId uint64
	Pid      uint32
	Tid      uint32
	MntNs    uint32
	IpcNs    uint32
	NetNs    uint32
	Type     uint16
	Pad      uint16
	Comm     [16]int8
}

// view reinterprets a ring-buffer record as the generated Go mirror of its C
// struct, after checking its length. Records are 8-byte aligned by the ring buffer.
func view[T any](raw []byte) (*T, error) {
	var zero T
	if len(raw) < int(unsafe.Sizeof(zero)) {
		return nil, fmt.Errorf("record of %d bytes, want %d for %T", len(raw), unsafe.Sizeof(zero), zero)
	}
	return (*T)(unsafe.Pointer(unsafe.SliceData(raw))), nil
}

func recordType(raw []byte) (uint16, error) {
	h, err := view[rawHeader](raw)
	if err != nil {
		return 0, err
	}
	return h.Type, nil
}

// header converts the common C header. Boot time becomes wall time here
// (wallclock.go).
func header(typ string, h *rawHeader) event.Header {
	return event.Header{
		Time:     wall.toWall(h.TsBootNs),
		Type:     typ,
		PID:      h.Pid,
		TID:      h.Tid,
		Comm:     cString(h.Comm[:]),
		CgroupID: h.CgroupId,
		MntNS:    h.MntNs,
		IPCNS:    h.IpcNs,
		NetNS:    h.NetNs,
	}
}

func cString(b []int8) string {
	return cBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b)))
}

// cBytes is the string up to the first NUL of b, or all of b.
func cBytes(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func name(table []string, i int) string {
	if i >= 0 && i < len(table) {
		return table[i]
	}
	return fmt.Sprintf("unknown(%d)", i)
}
