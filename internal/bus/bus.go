// Package bus fans events out from the pipeline to consumers that may be slow
// (HTTP clients, files, the flight recorder) without ever blocking the pipeline:
// each subscriber has a bounded queue, and what does not fit is counted, not kept.
package bus

import (
	"sync"
	"sync/atomic"

	"github.com/observer-dev/observer/internal/event"
)

// Subscription is one consumer's queue.
type Subscription struct {
	name    string
	ch      chan event.Event
	filter  func(event.Event) bool
	dropped atomic.Uint64
}

// C delivers the subscriber's events. It is closed by Unsubscribe or Bus.Close.
func (s *Subscription) C() <-chan event.Event { return s.ch }

// Dropped counts events this subscriber missed: its queue was full, or it
// received them but could not deliver them (see Missed).
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Missed counts n events the consumer took from its queue but could not
// deliver (a write error), with the drops of a full queue: one counter says
// what the consumer's output lacks.
func (s *Subscription) Missed(n uint64) { s.dropped.Add(n) }

// Bus is safe for concurrent use.
type Bus struct {
	mu     sync.RWMutex
	subs   map[*Subscription]struct{}
	closed bool
	// dropped keeps the drops of subscribers that have gone, by name, so the
	// exported counter never goes backwards.
	dropped map[string]uint64
}

// New returns an empty bus.
func New() *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}, dropped: map[string]uint64{}}
}

// Subscribe adds a consumer with a queue of size events. filter may be nil.
// name groups drop counts (e.g. "http", "file").
func (b *Bus) Subscribe(name string, size int, filter func(event.Event) bool) *Subscription {
	s := &Subscription{name: name, ch: make(chan event.Event, size), filter: filter}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Unsubscribe removes a consumer and closes its channel.
func (b *Bus) Unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	b.dropped[s.name] += s.dropped.Load()
	close(s.ch)
}

// Publish offers ev to every subscriber without blocking.
func (b *Bus) Publish(ev event.Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// Dropped returns the events dropped so far, by subscriber name.
func (b *Bus) Dropped() map[string]uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[string]uint64, len(b.dropped))
	for n, d := range b.dropped {
		out[n] = d
	}
	for s := range b.subs {
		out[s.name] += s.dropped.Load()
	}
	return out
}

// Close closes every subscriber's channel; later subscriptions start closed.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		b.dropped[s.name] += s.dropped.Load()
		delete(b.subs, s)
		close(s.ch)
	}
}
