// Package replay feeds a capture through the daemon as if its events were
// happening now: a Source for daemon.Run whose sensor status comes from the
// capture's snapshots, and a Resolver that knows the capture's containers.
// It needs no privileges and no kernel features.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// Info is the replay's progress, shown in /status under "source".
type Info struct {
	File     string         `json:"file"`
	Header   capture.Header `json:"header"`
	Events   int            `json:"events_replayed"`
	Done     bool           `json:"done"`
	Complete bool           `json:"capture_complete"`
	Warnings []string       `json:"warnings,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// Replay is both the Source and the Resolver of a replaying daemon.
type Replay struct {
	file   *os.File
	cr     *capture.Reader
	events chan event.Event
	// exitWhenDone closes Events at the end, which ends daemon.Run.
	exitWhenDone bool

	mu         sync.Mutex
	status     []sensor.Status
	containers map[string]container.Container
	info       Info
	done       chan struct{}

	// snapMu orders snapshot delivery: handlers see snapshots one at a time, in capture order.
	snapMu   sync.Mutex
	lastSnap *capture.Snapshot
	onSnap   []func(*capture.Snapshot)
}

// Open checks the capture's header; Start replays it.
func Open(path string, exitWhenDone bool) (*Replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	cr, err := capture.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	return &Replay{
		file: f, cr: cr, events: make(chan event.Event, 1024), exitWhenDone: exitWhenDone,
		status: cr.Header().Sensors, containers: map[string]container.Container{},
		info: Info{File: path, Header: cr.Header()}, done: make(chan struct{}),
	}, nil
}

// Start reads the capture in the background, in order, as fast as the
// pipeline takes it. Snapshots update Status and Containers as they come.
func (r *Replay) Start(ctx context.Context) {
	go func() {
		defer close(r.done)
		defer r.file.Close()
		err := r.run(ctx)
		r.mu.Lock()
		r.info.Done, r.info.Complete, r.info.Warnings = true, r.cr.Complete(), r.cr.Warnings()
		if err != nil {
			r.info.Error = err.Error()
		}
		r.mu.Unlock()
		if r.exitWhenDone {
			close(r.events)
		}
	}()
}

func (r *Replay) run(ctx context.Context) error {
	for {
		rec, err := r.cr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch rec.Kind {
		case capture.KindSnapshot:
			r.applySnapshot(rec.Snapshot)
		case capture.KindEvent:
			select {
			case r.events <- rec.Event:
			case <-ctx.Done():
				return ctx.Err()
			}
			r.mu.Lock()
			r.info.Events++
			r.mu.Unlock()
		}
	}
}

func (r *Replay) applySnapshot(s *capture.Snapshot) {
	var st []sensor.Status
	var ctrs []container.Container
	json.Unmarshal(s.Sections["containers"], &ctrs)
	r.mu.Lock()
	if json.Unmarshal(s.Sections["sensors"], &st) == nil && len(st) > 0 {
		r.status = st
	}
	for _, c := range ctrs {
		r.containers[c.ID] = c
	}
	r.mu.Unlock()

	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	r.lastSnap = s
	for _, f := range r.onSnap {
		f(s)
	}
}

// OnSnapshot implements daemon.SnapshotFeed: f gets the newest snapshot read
// so far, if any, then every later one. The capture is read ahead of the
// pipeline, so a snapshot may reach f before the events that precede it in
// the capture have been replayed; its consumers must allow for that.
func (r *Replay) OnSnapshot(f func(*capture.Snapshot)) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	r.onSnap = append(r.onSnap, f)
	if r.lastSnap != nil {
		f(r.lastSnap)
	}
}

// Done is closed when the whole capture has been fed to the pipeline.
func (r *Replay) Done() <-chan struct{} { return r.done }

// Info reports progress.
func (r *Replay) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// Events implements daemon.Source.
func (r *Replay) Events() <-chan event.Event { return r.events }

// Status implements daemon.Source: the sensors as the newest snapshot read so far saw them.
func (r *Replay) Status() []sensor.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sensor.Status(nil), r.status...)
}

// Replayed events already carry their container ids (the pipeline keeps them),
// so the resolver only answers for the rest: nothing to learn from cgroups.

// CgroupCreated implements the correlator; captures hold no cgroup events.
func (r *Replay) CgroupCreated(uint64, string) {}

// CgroupRemoved implements the correlator.
func (r *Replay) CgroupRemoved(uint64, string) {}

// Lookup implements the correlator: an event without a container id was the host's.
func (r *Replay) Lookup(uint64) container.Container { return container.Container{} }

// Containers implements daemon.Resolver: every container the snapshots named.
func (r *Replay) Containers() []container.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]container.Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b container.Container) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Gone implements daemon.Resolver: in a replay no container goes away.
func (r *Replay) Gone() <-chan string { return nil }
