package tracer

import (
	"fmt"

	"github.com/observer-dev/observer/internal/event"
)

// The cgroup sensor: cgroup directories made and removed (bpf/cgroup.bpf.c).
var cgroupSensor = sensorDef{
	name:      SensorCgroup,
	load:      loadCgroup,
	modes:     []Mode{ModeTPBTF, ModeTracepoint},
	decode:    decodeCgroup,
	ringBytes: 1 << 20,
}

func decodeCgroup(raw []byte) (event.Event, error) {
	r, err := view[cgroupCgroupEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	typ := event.TypeCgroupMkdir
	switch cgroupEventType(h.Type) {
	case cgroupEventTypeEVENT_CGROUP_MKDIR:
	case cgroupEventTypeEVENT_CGROUP_RMDIR:
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
