// Package pipeline moves events from their source to consumers. On one goroutine
// it keeps the cgroup index current, stamps each event with its container,
// counts it in the metrics and publishes it on the bus.
package pipeline

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// DefaultInjectQueue bounds the events in-daemon producers may have waiting.
const DefaultInjectQueue = 1024

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
	// InjectQueue bounds Inject's queue; default DefaultInjectQueue.
	InjectQueue int

	once     sync.Once
	injected chan event.Event
	dropped  atomic.Uint64
}

func (p *Pipeline) init() {
	p.once.Do(func() {
		n := p.InjectQueue
		if n <= 0 {
			n = DefaultInjectQueue
		}
		p.injected = make(chan event.Event, n)
	})
}

// Inject queues an event that a producer inside the daemon derived (a residue
// detector's finding), so that it takes the same path as the source's events:
// stamping, observers, bus. It never blocks: producers may themselves be
// observers running on the pipeline goroutine. It reports whether the event
// was queued; a full queue drops it, counted by InjectDropped, and the
// producer may offer it again later.
func (p *Pipeline) Inject(ev event.Event) bool {
	p.init()
	select {
	case p.injected <- ev:
		return true
	default:
		p.dropped.Add(1)
		return false
	}
}

// InjectDropped counts events Inject dropped because its queue was full.
func (p *Pipeline) InjectDropped() uint64 { return p.dropped.Load() }

// maxBatch bounds the source events Run takes at once.
const maxBatch = 256

// Run processes in, and injected events, until in is closed or ctx ends.
// Events injected before in closes are still processed.
//
// What the source has queued is taken as one batch (up to maxBatch): each is
// stamped and observed in order, then the batch is published back to back, so
// a consumer woken by its first event finds the rest queued instead of being
// woken for each (and the event file is flushed once for them).
func (p *Pipeline) Run(ctx context.Context, in <-chan event.Event) {
	p.init()
	batch := make([]event.Event, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			// Shutting down: what the source has already queued still counts.
			p.drainSource(in)
			p.drainInjected()
			return
		case ev := <-p.injected:
			p.handle(ev)
		case ev, ok := <-in:
			if !ok {
				p.drainInjected()
				return
			}
			batch = append(batch, ev)
			open := p.take(in, &batch)
			for i, ev := range batch {
				if !p.prepare(ev) {
					batch[i] = nil
				}
			}
			for _, ev := range batch {
				if ev != nil {
					p.Bus.Publish(ev)
				}
			}
			clear(batch)
			batch = batch[:0]
			if !open {
				p.drainInjected()
				return
			}
		}
	}
}

// take appends what in holds now to batch, up to maxBatch; false once in is closed.
func (p *Pipeline) take(in <-chan event.Event, batch *[]event.Event) bool {
	for len(*batch) < maxBatch {
		select {
		case ev, ok := <-in:
			if !ok {
				return false
			}
			*batch = append(*batch, ev)
		default:
			return true
		}
	}
	return true
}

// drainInjected handles what is queued now; observers may inject more, which
// the bounded loop leaves for nobody rather than spinning.
func (p *Pipeline) drainInjected() {
	for range cap(p.injected) {
		select {
		case ev := <-p.injected:
			p.handle(ev)
		default:
			return
		}
	}
}

func (p *Pipeline) handle(ev event.Event) {
	if p.prepare(ev) {
		p.Bus.Publish(ev)
	}
}

// prepare stamps ev with its container and shows it to the observers; false
// for an event that is not published (index upkeep).
func (p *Pipeline) prepare(ev event.Event) bool {
	if c, ok := ev.(*event.CgroupChange); ok {
		// Index upkeep, not news for users.
		if c.Type == event.TypeCgroupRmdir {
			p.Correlator.CgroupRemoved(c.ID, c.Path)
		} else {
			p.Correlator.CgroupCreated(c.ID, c.Path)
		}
		return false
	}
	h := ev.Hdr()
	// An event that already names its container (a replayed capture) keeps it.
	if h.ContainerID == "" && h.CgroupID != 0 {
		ctr := p.Correlator.Lookup(h.CgroupID)
		h.ContainerID, h.ContainerName, h.ContainerImage = ctr.ID, ctr.Name, ctr.Image
		h.Pod, h.PodNamespace, h.PodContainer = ctr.Pod.Pod, ctr.PodNamespace, ctr.PodContainer
	}
	for _, o := range p.Observers {
		o.Observe(ev)
	}
	return true
}

// drainSource handles the events queued in `in` when it is called, and no more:
// a source that keeps producing cannot hold shutdown up.
func (p *Pipeline) drainSource(in <-chan event.Event) {
	for n := len(in); n > 0; n-- {
		ev, ok := <-in
		if !ok {
			return
		}
		p.handle(ev)
	}
}
