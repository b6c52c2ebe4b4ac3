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
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// Info is the replay's progress, shown in /status under "source".
type Info struct {
	File     string         `json:"file"`
	Header   capture.Header `json:"header"`
	Speed    float64        `json:"speed"` // 0: as fast as the pipeline takes it
	Events   int            `json:"events_replayed"`
	Done     bool           `json:"done"`
	Stopped  bool           `json:"stopped,omitempty"` // ended before the capture did (interrupted)
	Complete bool           `json:"capture_complete"`
	Warnings []string       `json:"warnings,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// MaxContainers bounds the containers a replay learns from snapshots: a
// crafted capture must not grow the replaying daemon without bound.
const MaxContainers = 4096

// Options configure a replay.
type Options struct {
	// ExitWhenDone closes Events at the end, which ends daemon.Run.
	ExitWhenDone bool
	// Speed replays records as they were spaced when recorded, divided by
	// Speed (1: real time); 0 replays as fast as the pipeline takes them.
	Speed float64
}

// Replay is both the Source and the Resolver of a replaying daemon.
type Replay struct {
	file   *os.File
	cr     *capture.Reader
	events chan event.Event
	opts   Options
	pace   pacer

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

// Open checks the options and the capture's header; Start replays it.
func Open(path string, opts Options) (*Replay, error) {
	if err := CheckSpeed(opts.Speed); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
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
		file: f, cr: cr, events: make(chan event.Event, 1024), opts: opts,
		pace:   pacer{speed: opts.Speed, now: time.Now, sleep: sleepCtx},
		status: cr.Header().Sensors, containers: map[string]container.Container{},
		info: Info{File: path, Header: cr.Header(), Speed: opts.Speed}, done: make(chan struct{}),
	}, nil
}

// CheckSpeed accepts 0 (as fast as possible) and factors up to a million.
func CheckSpeed(speed float64) error {
	if !(speed >= 0 && speed <= 1e6) { // NaN fails too
		return fmt.Errorf("speed %g: want 0 (as fast as possible) or a factor up to 1e6", speed)
	}
	return nil
}

// Start reads the capture in the background, in order, paced by
// Options.Speed. Snapshots update Status and Containers as they come.
func (r *Replay) Start(ctx context.Context) {
	go func() {
		defer close(r.done)
		defer r.file.Close()
		err := r.run(ctx)
		r.mu.Lock()
		r.info.Done, r.info.Complete, r.info.Warnings = true, r.cr.Complete(), r.cr.Warnings()
		switch {
		case err == nil:
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// Stopped (interrupted, or the daemon ended): not the capture's fault.
			r.info.Done, r.info.Stopped = false, true
		default:
			r.info.Error = err.Error()
		}
		r.mu.Unlock()
		if r.opts.ExitWhenDone {
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
			if err := r.pace.wait(ctx, rec.Snapshot.Time); err != nil {
				return err
			}
			r.applySnapshot(rec.Snapshot)
		case capture.KindEvent:
			if err := r.pace.wait(ctx, rec.Event.Hdr().Time); err != nil {
				return err
			}
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
		if _, ok := r.containers[c.ID]; ok || len(r.containers) < MaxContainers {
			r.containers[c.ID] = c
		}
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

// pacer spaces records in wall time as their timestamps were spaced, divided
// by speed. Time runs from the first timestamped record; a record stamped
// earlier than one before it (events reach the recorder slightly out of
// order) goes at once.
type pacer struct {
	speed float64
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	first, start time.Time // the first record's timestamp, and when it was replayed
}

func (p *pacer) wait(ctx context.Context, at time.Time) error {
	if p.speed == 0 || at.IsZero() {
		return nil
	}
	if p.first.IsZero() {
		p.first, p.start = at, p.now()
		return nil
	}
	due := p.start.Add(time.Duration(float64(at.Sub(p.first)) / p.speed))
	if d := due.Sub(p.now()); d > 0 {
		return p.sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
