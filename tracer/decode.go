package tracer

import (
	"fmt"
	"structs"
	"unsafe"

	"github.com/observer-dev/observer/internal/event"
)

// Record types, kept in sync with enum event_type in bpf/common.h.
const (
	recRenameExdev = 1
	recSignal      = 2
	recDaemonExit  = 3
	recCgroupMkdir = 4
	recCgroupRmdir = 5
	recCopyUp      = 10
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
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), n))
}

func decodeRename(raw []byte) (event.Event, error) {
	r, err := view[renameRenameEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	return &event.RenameExdev{
		Header:  header(event.TypeRenameExdev, h),
		OldPath: cString(r.OldPath[:]),
		NewPath: cString(r.NewPath[:]),
		Flags:   r.Flags,
	}, nil
}

var dispositions = [...]string{"unknown", "default", "ignored", "handled"}

// Values of enum trace_signal_result (include/trace/events/signal.h).
var signalResults = [...]string{"delivered", "ignored", "already_pending", "overflow_fail", "lose_info"}

func name(table []string, i int) string {
	if i >= 0 && i < len(table) {
		return table[i]
	}
	return fmt.Sprintf("unknown(%d)", i)
}

func decodeSignal(raw []byte) (event.Event, error) {
	typ, err := recordType(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case recSignal:
		r, err := view[signalSignalEvent](raw)
		if err != nil {
			return nil, err
		}
		h := &r.Hdr
		targetPID := r.TargetTgid
		if targetPID == 0 { // the classic tracepoint knows only the thread id
			targetPID = r.TargetPid
		}
		comm := cString(h.Comm[:])
		return &event.Signal{
			Header:      header(event.TypeSignal, h),
			Signal:      event.SignalName(r.Signo),
			Signo:       r.Signo,
			SenderPID:   h.Pid,
			SenderComm:  comm,
			TargetPID:   targetPID,
			TargetComm:  cString(r.TargetComm[:]),
			Disposition: name(dispositions[:], int(r.Disposition)),
			Result:      name(signalResults[:], int(r.Result)),
		}, nil
	case recDaemonExit:
		r, err := view[signalExitEvent](raw)
		if err != nil {
			return nil, err
		}
		h := &r.Hdr
		ev := &event.DaemonExit{
			Header: header(event.TypeDaemonExit, h),
		}
		// exit_code holds a wait status: signal in the low 7 bits, core flag 0x80, code above.
		if sig := r.ExitCode & 0x7f; sig != 0 {
			ev.Signo = sig
			ev.Signal = event.SignalName(sig)
			ev.CoreDumped = r.ExitCode&0x80 != 0
		} else {
			ev.ExitCode = (r.ExitCode >> 8) & 0xff
		}
		return ev, nil
	}
	return nil, fmt.Errorf("signal sensor: unexpected record type %d", typ)
}

func decodeCgroup(raw []byte) (event.Event, error) {
	r, err := view[cgroupCgroupEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	typ := event.TypeCgroupMkdir
	switch h.Type {
	case recCgroupMkdir:
	case recCgroupRmdir:
		typ = event.TypeCgroupRmdir
	default:
		return nil, fmt.Errorf("cgroup sensor: unexpected record type %d", h.Type)
	}
	return &event.CgroupChange{
		Header: header(typ, h),
		ID:     r.Id,
		Path:   cString(r.Path[:]),
	}, nil
}
