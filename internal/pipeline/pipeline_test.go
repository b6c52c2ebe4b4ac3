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
