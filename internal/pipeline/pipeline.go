// Package pipeline moves events from their source to consumers. On one goroutine
// it keeps the cgroup index current, stamps each event with its container,
// counts it in the metrics and publishes it on the bus.
package pipeline

import (
	"context"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// Correlator maps kernel cgroup ids to containers (container.Resolver).
type Correlator interface {
	CgroupCreated(cgroupID uint64, path string)
	CgroupRemoved(cgroupID uint64, path string)
	Lookup(cgroupID uint64) container.Container
}

// Observer sees every published event synchronously, so it never misses one
// (the metrics). It must be cheap.
type Observer interface {
	Observe(event.Event)
}

// Pipeline is one event path.
type Pipeline struct {
	Correlator Correlator
	Observers  []Observer
	Bus        *bus.Bus
}

// Run processes in until it is closed or ctx ends.
func (p *Pipeline) Run(ctx context.Context, in <-chan event.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-in:
			if !ok {
				return
			}
			p.handle(ev)
		}
	}
}

func (p *Pipeline) handle(ev event.Event) {
	if c, ok := ev.(*event.CgroupChange); ok {
		// Index upkeep, not news for users.
		if c.Type == event.TypeCgroupRmdir {
			p.Correlator.CgroupRemoved(c.ID, c.Path)
		} else {
			p.Correlator.CgroupCreated(c.ID, c.Path)
		}
		return
	}
	h := ev.Hdr()
	// An event that already names its container (a replayed capture) keeps it.
	if h.ContainerID == "" && h.CgroupID != 0 {
		ctr := p.Correlator.Lookup(h.CgroupID)
		h.ContainerID, h.ContainerName, h.ContainerImage = ctr.ID, ctr.Name, ctr.Image
	}
	for _, o := range p.Observers {
		o.Observe(ev)
	}
	p.Bus.Publish(ev)
}
