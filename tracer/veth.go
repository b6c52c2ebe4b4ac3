package tracer

import (
	"fmt"

	"github.com/observer-dev/observer/internal/event"
)

// The veth sensor: veth pairs created and deleted, and why (bpf/veth.bpf.c).
var vethSensor = sensorDef{
	name:      SensorVeth,
	load:      loadVeth,
	modes:     []Mode{ModeFentry, ModeKprobe},
	decode:    decodeVeth,
	ringBytes: 256 << 10,
}

func decodeVeth(raw []byte) (event.Event, error) {
	r, err := view[vethVethEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	typ := event.TypeVethCreate
	switch vethEventType(h.Type) {
	case vethEventTypeEVENT_VETH_CREATE:
	case vethEventTypeEVENT_VETH_DELETE:
		typ = event.TypeVethDelete
	default:
		return nil, fmt.Errorf("veth sensor: unexpected record type %d", h.Type)
	}
	c := &event.VethChange{
		Header:         header(typ, h),
		Name:           cString(r.Name[:]),
		Ifindex:        r.Ifindex,
		DevNetNS:       r.DevNetns,
		ByKernelThread: r.Kthread != 0,
	}
	if r.PeerIfindex != 0 {
		c.PeerName = cString(r.PeerName[:])
		c.PeerIfindex = r.PeerIfindex
		c.PeerNetNS = r.PeerNetns
	}
	// veth_dellink is reached from rtnetlink (a process), module unload (a
	// process) or cleanup_net (a kworker): a kernel thread means the
	// device's network namespace died.
	if typ == event.TypeVethDelete && c.ByKernelThread {
		c.Cause = event.VethCauseNetNSTeardown
	}
	return c, nil
}
