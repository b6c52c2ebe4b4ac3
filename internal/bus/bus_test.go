package bus

import (
	"testing"

	"github.com/observer-dev/observer/internal/event"
)

func ev(typ string) event.Event { return &event.Signal{Header: event.Header{Type: typ}} }

func TestPublishNeverBlocksAndCountsDrops(t *testing.T) {
	b := New()
	slow := b.Subscribe("http", 2, nil)
	for i := 0; i < 5; i++ {
		b.Publish(ev("signal"))
	}
	if got := len(slow.C()); got != 2 {
		t.Fatalf("queued %d, want 2", got)
	}
	if got := slow.Dropped(); got != 3 {
		t.Fatalf("dropped %d, want 3", got)
	}
	b.Unsubscribe(slow)
	if got := b.Dropped()["http"]; got != 3 {
		t.Fatalf("drops after unsubscribe = %d, want 3 kept", got)
	}
}

func TestFilterAndClose(t *testing.T) {
	b := New()
	s := b.Subscribe("file", 10, func(e event.Event) bool { return e.Hdr().Type == "signal" })
	b.Publish(ev("rename_exdev"))
	b.Publish(ev("signal"))
	b.Close()
	var types []string
	for e := range s.C() {
		types = append(types, e.Hdr().Type)
	}
	if len(types) != 1 || types[0] != "signal" {
		t.Fatalf("got %v, want only the signal", types)
	}
	b.Unsubscribe(s) // after Close: a no-op, not a double close
	late := b.Subscribe("late", 1, nil)
	if _, ok := <-late.C(); ok {
		t.Fatal("subscription after Close should start closed")
	}
}
