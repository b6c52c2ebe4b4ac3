package tracer

import (
	"fmt"

	"github.com/observer-dev/observer/internal/event"
)

const (
	recSemCreate  = 6
	recSemRemove  = 7
	recVethCreate = 8
	recVethDelete = 9
)

func decodeSem(raw []byte) (event.Event, error) {
	r, err := view[semSemEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	switch h.Type {
	case recSemCreate:
		return &event.SemCreate{
			Header:          header(event.TypeSemCreate, h),
			SemID:           r.Semid,
			Key:             r.Key,
			NSems:           r.Nsems,
			Flags:           r.Flags,
			StartBoottimeNs: r.StartBoottime,
		}, nil
	case recSemRemove:
		return &event.SemRemove{Header: header(event.TypeSemRemove, h), SemID: r.Semid}, nil
	}
	return nil, fmt.Errorf("sem sensor: unexpected record type %d", h.Type)
}

func decodeVeth(raw []byte) (event.Event, error) {
	r, err := view[vethVethEvent](raw)
	if err != nil {
		return nil, err
	}
	h := &r.Hdr
	typ := event.TypeVethCreate
	switch h.Type {
	case recVethCreate:
	case recVethDelete:
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
