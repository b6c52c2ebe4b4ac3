package tracer

import (
	"fmt"

	"github.com/observer-dev/observer/internal/event"
)

// The sem sensor: System V semaphore sets created and removed (bpf/sem.bpf.c).
var semSensor = sensorDef{
	name:      SensorSem,
	load:      loadSem,
	modes:     []Mode{ModeFentry, ModeKprobe, ModeTailCall, ModeTracepoint},
	decode:    decodeSem,
	tailCalls: semTailCalls,
	ringBytes: 256 << 10,
}

// Its tail_call programs, by syscall (SYSCALL_PROGRAMS in bpf/sem.bpf.c).
var semTailCalls = []tailCall{
	syscallTail("semget", semProgSemgetTailEnter, semProgSemgetTailExit),
	syscallTail("semctl", semProgSemctlTailEnter, semProgSemctlTailExit),
}

func decodeSem(raw []byte) (event.Event, error) {
	r, err := view[semSemEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	switch semEventType(h.Type) {
	case semEventTypeEVENT_SEM_CREATE:
		return &event.SemCreate{
			Header:          header(event.TypeSemCreate, h),
			SemID:           r.Semid,
			Key:             r.Key,
			NSems:           r.Nsems,
			Flags:           r.Flags,
			StartBoottimeNs: r.StartBoottime,
		}, nil
	case semEventTypeEVENT_SEM_REMOVE:
		return &event.SemRemove{Header: header(event.TypeSemRemove, h), SemID: r.Semid}, nil
	}
	return nil, fmt.Errorf("sem sensor: unexpected record type %d", h.Type)
}
