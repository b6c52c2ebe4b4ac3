package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/observer-dev/observer/internal/capture"
)

// Provider contributes one named section to every state snapshot. Detectors add
// theirs with one line in the daemon's provider list, e.g.
//
//	{Name: "semaphores", Collect: func(ctx context.Context) (any, error) { return sem.Inventory() }}
//
// Collect must return promptly (it runs on the recorder's goroutine and at
// capture time) and its result must encode as JSON.
type Provider struct {
	Name    string
	Collect func(ctx context.Context) (any, error)
}

// providerTimeout bounds one provider's Collect.
const providerTimeout = 2 * time.Second

// Snapshot asks every provider for its section. A failing provider is recorded
// in Errors; the others still count.
func Snapshot(ctx context.Context, providers []Provider, reason string) *capture.Snapshot {
	s := &capture.Snapshot{Time: time.Now().UTC(), Reason: reason, Sections: map[string]json.RawMessage{}}
	for _, p := range providers {
		raw, err := collect(ctx, p)
		if err != nil {
			if s.Errors == nil {
				s.Errors = map[string]string{}
			}
			s.Errors[p.Name] = err.Error()
			continue
		}
		s.Sections[p.Name] = raw
	}
	return s
}

func collect(ctx context.Context, p Provider) (raw json.RawMessage, err error) {
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	defer func() {
		// A detector's bug must not take the daemon down with it.
		if r := recover(); r != nil {
			err = fmt.Errorf("provider panicked: %v", r)
		}
	}()
	v, err := p.Collect(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
