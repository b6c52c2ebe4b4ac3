package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
)

// fakeIndex stands in for the resolver, whose own tests cover the kernel side.
type fakeIndex map[uint64]string

func (f fakeIndex) CgroupCreated(id uint64, path string) { f[id] = container.IDFromCgroupPath(path) }
func (f fakeIndex) CgroupRemoved(id uint64, path string) { delete(f, id) }
func (f fakeIndex) Lookup(id uint64) container.Container { return container.Container{ID: f[id]} }

type counter struct{ n int }

func (c *counter) Observe(event.Event) { c.n++ }

func TestCorrelatesCountsAndPublishes(t *testing.T) {
	id := strings.Repeat("ab", 32)
	idx := fakeIndex{}
	b := bus.New()
	sub := b.Subscribe("test", 10, nil)
	cnt := &counter{}
	p := &Pipeline{Correlator: idx, Observers: []Observer{cnt}, Bus: b}

	in := make(chan event.Event, 10)
	in <- &event.CgroupChange{Header: event.Header{Type: event.TypeCgroupMkdir}, ID: 7, Path: "/docker/" + id}
	in <- &event.RenameExdev{Header: event.Header{Type: event.TypeRenameExdev, CgroupID: 7}}
	in <- &event.RenameExdev{Header: event.Header{Type: event.TypeRenameExdev, CgroupID: 1}}
	in <- &event.CgroupChange{Header: event.Header{Type: event.TypeCgroupRmdir}, ID: 7, Path: "/docker/" + id}
	close(in)
	p.Run(context.Background(), in)
	b.Close()

	var got []event.Event
	for ev := range sub.C() {
		got = append(got, ev)
	}
	if len(got) != 2 || cnt.n != 2 {
		t.Fatalf("published %d, observed %d; want 2 each (cgroup changes are internal)", len(got), cnt.n)
	}
	if got[0].Hdr().ContainerID != id || got[1].Hdr().ContainerID != "" {
		t.Errorf("container ids %q, %q", got[0].Hdr().ContainerID, got[1].Hdr().ContainerID)
	}
	if _, ok := idx[7]; ok {
		t.Error("rmdir did not reach the index")
	}
}

// deriver is an observer that, like the residue detector, produces events of
// its own: for each trigger it sees it injects n residue events from the
// pipeline goroutine itself.
type deriver struct {
	p      *Pipeline
	n      int
	seen   []string
	queued int // Inject said yes
}

func (d *deriver) Observe(ev event.Event) {
	d.seen = append(d.seen, ev.Hdr().Type)
	if ev.Hdr().Type != event.TypeSignal {
		return
	}
	for range d.n {
		if d.p.Inject(&event.Residue{Header: event.Header{Type: event.TypeResidue, CgroupID: 7}, Resource: "sem"}) {
			d.queued++
		}
	}
}

func TestInjectedEventsTakeThePipelinePath(t *testing.T) {
	id := strings.Repeat("cd", 32)
	b := bus.New()
	sub := b.Subscribe("test", 10, nil)
	cnt := &counter{}
	p := &Pipeline{Correlator: fakeIndex{7: id}, Bus: b}
	d := &deriver{p: p, n: 1}
	p.Observers = []Observer{cnt, d}

	in := make(chan event.Event, 1)
	in <- &event.Signal{Header: event.Header{Type: event.TypeSignal}}
	close(in)
	p.Run(context.Background(), in) // returns: the injected event was drained, nothing blocked
	b.Close()

	var got []event.Event
	for ev := range sub.C() {
		got = append(got, ev)
	}
	if len(got) != 2 || got[1].Hdr().Type != event.TypeResidue {
		t.Fatalf("published %v; want the signal, then the injected residue event", got)
	}
	if got[1].Hdr().ContainerID != id {
		t.Errorf("injected event not stamped with its container: %q", got[1].Hdr().ContainerID)
	}
	if cnt.n != 2 || strings.Join(d.seen, " ") != "signal residue" {
		t.Errorf("observers saw %d events (%v); want both, the injected one too", cnt.n, d.seen)
	}
	if p.InjectDropped() != 0 {
		t.Errorf("dropped %d", p.InjectDropped())
	}
}

// TestInjectFullQueueDrops: an observer injecting more than the queue holds
// from the pipeline goroutine must not deadlock it; the excess is counted.
func TestInjectFullQueueDrops(t *testing.T) {
	b := bus.New()
	sub := b.Subscribe("test", 100, nil)
	p := &Pipeline{Correlator: fakeIndex{}, Bus: b, InjectQueue: 2}
	d := &deriver{p: p, n: 5}
	p.Observers = []Observer{d}

	in := make(chan event.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, in)
	}()
	in <- &event.Signal{Header: event.Header{Type: event.TypeSignal}}
	in <- &event.Signal{Header: event.Header{Type: event.TypeSignal}}
	close(in)
	<-done
	cancel()
	b.Close()

	residue := 0
	for ev := range sub.C() {
		if ev.Hdr().Type == event.TypeResidue {
			residue++
		}
	}
	// Each trigger finds room for 2 of its 5 (the queue empties between triggers
	// only if Run got to it; either way every event is published or counted).
	if residue+int(p.InjectDropped()) != 10 || p.InjectDropped() < 6 {
		t.Fatalf("published %d injected events, dropped %d; want 10 in all, at least 6 dropped", residue, p.InjectDropped())
	}
	// Inject's answer is the truth: exactly the events it said it queued got through.
	if d.queued != residue {
		t.Fatalf("Inject said it queued %d, %d were published", d.queued, residue)
	}
}

func TestShutdownHandlesWhatIsQueued(t *testing.T) {
	b := bus.New()
	sub := b.Subscribe("test", 10, nil)
	p := &Pipeline{Correlator: fakeIndex{}, Bus: b}
	in := make(chan event.Event, 10)
	for i := 0; i < 3; i++ {
		in <- &event.Signal{Header: event.Header{Type: event.TypeSignal}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already shutting down: the queued events must still be published
	p.Run(ctx, in)
	if got := len(sub.C()); got != 3 {
		t.Fatalf("published %d of 3 queued events at shutdown", got)
	}
}
