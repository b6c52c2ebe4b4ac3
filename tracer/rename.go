package tracer

import (
	"fmt"
	"unsafe"

	"github.com/observer-dev/observer/internal/event"
)

// The rename sensor: rename(2), renameat(2) and renameat2(2) failing with
// EXDEV (bpf/rename.bpf.c). arm64 has no rename(2) (its libc's rename calls
// renameat): there its syscall programs get no slot and no tracepoint.
var renameSensor = sensorDef{
	name:      SensorRename,
	load:      loadRename,
	modes:     []Mode{ModeFentry, ModeKprobe, ModeTailCall, ModeTracepoint},
	decode:    decodeRename,
	tailCalls: renameTailCalls,
	ringBytes: 4 << 20,
}

// Its tail_call programs, by syscall: SYSCALL_PROGRAMS(name, ...) in
// bpf/rename.bpf.c defines <name>_tail_enter and <name>_tail_exit.
var renameTailCalls = []tailCall{
	syscallTail("rename", renameProgRenameTailEnter, renameProgRenameTailExit), // x86-64 only
	syscallTail("renameat", renameProgRenameatTailEnter, renameProgRenameatTailExit),
	syscallTail("renameat2", renameProgRenameat2TailEnter, renameProgRenameat2TailExit),
}

// decodeRename reads a record: the fixed part (renameRenameEvent), then the
// two paths back to back, each with its NUL, of the lengths it gives.
func decodeRename(raw []byte) (event.Event, error) {
	r, err := view[renameRenameEvent](raw)
	if err != nil {
		return nil, err
	}
	paths := raw[unsafe.Sizeof(*r):]
	oldLen, newLen := int(r.OldLen), int(r.NewLen)
	if oldLen+newLen > len(paths) {
		return nil, fmt.Errorf("rename record: paths of %d and %d bytes in %d", oldLen, newLen, len(paths))
	}
	h := &r.Hdr
	return &event.RenameExdev{
		Header:  header(event.TypeRenameExdev, h),
		OldPath: cBytes(paths[:oldLen]),
		NewPath: cBytes(paths[oldLen : oldLen+newLen]),
		Flags:   r.Flags,
	}, nil
}
