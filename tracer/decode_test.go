package tracer

import (
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/observer-dev/observer/internal/event"
)

// rawBytes returns the in-memory bytes of a generated record, as the ring
// buffer would deliver them.
func rawBytes[T any](rec *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(rec)), unsafe.Sizeof(*rec))
}

func putString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

func fillHeader(h *rawHeader, typ uint16, comm string) {
	h.TsBootNs = 1
	h.CgroupId, h.Pid, h.Tid, h.MntNs, h.IpcNs, h.NetNs, h.Type = 42, 100, 101, 7, 8, 9, typ
	putString(h.Comm[:], comm)
}

// renameRecord is a rename record as the kernel writes it: the fixed part,
// then the two paths back to back with their NULs.
func renameRecord(rec renameRenameEvent, oldPath, newPath string) []byte {
	rec.OldLen, rec.NewLen = uint16(len(oldPath)+1), uint16(len(newPath)+1)
	raw := append([]byte(nil), rawBytes(&rec)...)
	raw = append(append(raw, oldPath...), 0)
	return append(append(raw, newPath...), 0)
}

func TestDecodeRename(t *testing.T) {
	var rec renameRenameEvent
	fillHeader(&rec.Hdr, uint16(renameEventTypeEVENT_RENAME_EXDEV), "mv")
	rec.Ret, rec.Flags = -18, 1
	long := strings.Repeat("x", 255)
	raw := renameRecord(rec, "/a/dir", long)
	ev, err := decodeRename(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := ev.(*event.RenameExdev)
	if r.Type != event.TypeRenameExdev || r.PID != 100 || r.TID != 101 || r.Comm != "mv" || r.CgroupID != 42 ||
		r.MntNS != 7 || r.IPCNS != 8 || r.NetNS != 9 || r.OldPath != "/a/dir" || r.NewPath != long || r.Flags != 1 {
		t.Errorf("decoded %+v", r)
	}
	// Boot time 1 ns is converted to a wall time in the past (the machine booted).
	if !r.Time.Before(time.Now()) {
		t.Errorf("time %v not before now", r.Time)
	}
	// The ring pads a record to 8 bytes: what follows the paths is ignored.
	if ev, err := decodeRename(append(raw, 0, 0, 0)); err != nil || ev.(*event.RenameExdev).NewPath != long {
		t.Errorf("padded record: %v, %v", ev, err)
	}
	// A path without its NUL ends where its length says.
	unterminated := renameRecord(rec, "/a", "/b")
	unterminated[len(unterminated)-1] = 'c'
	if ev, err := decodeRename(unterminated); err != nil || ev.(*event.RenameExdev).NewPath != "/bc" {
		t.Errorf("unterminated path: %v, %v", ev, err)
	}
	for _, n := range []int{10, int(unsafe.Sizeof(rec)), len(raw) - 1} {
		if _, err := decodeRename(raw[:n]); err == nil {
			t.Errorf("record truncated to %d of %d bytes: want error", n, len(raw))
		}
	}
}

func TestDecodeSignalAndExit(t *testing.T) {
	var sig signalSignalEvent
	fillHeader(&sig.Hdr, uint16(signalEventTypeEVENT_SIGNAL), "kill")
	sig.Signo, sig.Result, sig.TargetPid, sig.TargetTgid, sig.Disposition = 13, 0, 201, 200, 1
	putString(sig.TargetComm[:], "dockerd")
	ev, err := decodeSignal(rawBytes(&sig))
	if err != nil {
		t.Fatal(err)
	}
	s := ev.(*event.Signal)
	if s.Signal != "SIGPIPE" || s.TargetPID != 200 || s.TargetComm != "dockerd" || s.Disposition != "default" ||
		s.Result != "delivered" || s.SenderPID != 100 || s.SenderComm != "kill" {
		t.Errorf("signal %+v", s)
	}
	sig.Disposition, sig.Result = 99, 99 // values from a newer kernel or program
	ev, _ = decodeSignal(rawBytes(&sig))
	if s := ev.(*event.Signal); s.Disposition != "unknown(99)" || s.Result != "unknown(99)" {
		t.Errorf("out-of-range values: %q %q", s.Disposition, s.Result)
	}

	var exit signalExitEvent
	fillHeader(&exit.Hdr, uint16(signalEventTypeEVENT_DAEMON_EXIT), "dockerd")
	for _, c := range []struct {
		status int32
		code   int32
		signal string
		core   bool
	}{
		{3 << 8, 3, "", false},
		{9, 0, "SIGKILL", false},
		{6 | 0x80, 0, "SIGABRT", true},
	} {
		exit.ExitCode = c.status
		ev, err := decodeSignal(rawBytes(&exit))
		if err != nil {
			t.Fatal(err)
		}
		e := ev.(*event.DaemonExit)
		if e.ExitCode != c.code || e.Signal != c.signal || e.CoreDumped != c.core {
			t.Errorf("status %#x: got code %d signal %q core %v", c.status, e.ExitCode, e.Signal, e.CoreDumped)
		}
	}
	exit.Hdr.Type = 77
	if _, err := decodeSignal(rawBytes(&exit)); err == nil {
		t.Error("unknown record type: want error")
	}
}

func TestDecodeCgroup(t *testing.T) {
	var rec cgroupCgroupEvent
	fillHeader(&rec.Hdr, uint16(cgroupEventTypeEVENT_CGROUP_RMDIR), "runc")
	rec.Id = 1234
	putString(rec.Path[:], "/docker/abc")
	ev, err := decodeCgroup(rawBytes(&rec))
	if err != nil {
		t.Fatal(err)
	}
	if c := ev.(*event.CgroupChange); c.Type != event.TypeCgroupRmdir || c.ID != 1234 || c.Path != "/docker/abc" {
		t.Errorf("cgroup %+v", c)
	}
	if _, err := decodeCgroup(nil); err == nil {
		t.Error("empty record: want error")
	}
}
