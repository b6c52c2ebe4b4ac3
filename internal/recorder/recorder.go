// Package recorder is the flight recorder: it keeps the last minutes of events
// and periodic state snapshots in memory, bounded by time and by bytes, and
// writes them, plus what arrives during a chosen duration, as a capture.
package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/event"
)

// Defaults.
const (
	DefaultWindow        = 10 * time.Minute
	DefaultMaxBytes      = 64 << 20
	DefaultSnapshotEvery = time.Minute
	DefaultQueue         = 8192
	// tapQueue is how far a capture's writer may fall behind live events.
	tapQueue = 8192
)

// Options configure a Recorder.
type Options struct {
	Window        time.Duration // how far back the recorder reaches
	MaxBytes      int64         // bound on the bytes held (encoded events and snapshots plus bookkeeping)
	SnapshotEvery time.Duration
	Queue         int // bus queue; a full queue drops, counted as subscriber "recorder"
	Providers     []Provider
	// Header returns the capture header's host facts (host, kernel, observer
	// version, sensors); the recorder fills in the rest.
	Header func() capture.Header
	Logger *slog.Logger
}

// entry is one recorded item, already encoded: encoding once on arrival makes
// the byte bound exact and captures cheap. Its data is a view into the store.
type entry struct {
	t    time.Time
	snap bool
	data []byte
}

// maxScratch bounds the encoding buffer kept between events.
const maxScratch = 64 << 10

// Recorder is safe for concurrent use.
type Recorder struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	store   store
	scratch []byte // the encoding buffer, reused
	taps    map[*tap]struct{}

	sub     *bus.Subscription
	evicted atomic.Uint64
}

// New checks the options and applies defaults.
func New(opts Options) (*Recorder, error) {
	if opts.Window < 0 || opts.MaxBytes < 0 || opts.SnapshotEvery < 0 || opts.Queue < 0 {
		return nil, errors.New("recorder: window, bytes, snapshot period and queue must not be negative")
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = DefaultSnapshotEvery
	}
	if opts.Queue == 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Header == nil {
		opts.Header = func() capture.Header { return capture.Header{} }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Recorder{opts: opts, log: opts.Logger.With("component", "recorder"), now: time.Now, taps: map[*tap]struct{}{},
		store: newStore(opts.MaxBytes)}, nil
}

// Subscribe attaches the recorder to the bus. Call it before events flow, then Run.
func (r *Recorder) Subscribe(b *bus.Bus) { r.sub = b.Subscribe("recorder", r.opts.Queue, nil) }

// Run records until ctx ends or the bus closes.
func (r *Recorder) Run(ctx context.Context) {
	if r.sub == nil {
		panic("recorder: Run before Subscribe")
	}
	r.snapshot(ctx, "periodic")
	tick := time.NewTicker(r.opts.SnapshotEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.snapshot(ctx, "periodic")
		case ev, ok := <-r.sub.C():
			if !ok {
				return
			}
			r.Record(ev)
		}
	}
}

// Record adds one event. Run calls it for every event on the bus.
func (r *Recorder) Record(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := event.AppendJSON(r.scratch[:0], ev)
	if err != nil {
		r.log.Debug("event not recorded", "type", ev.Hdr().Type, "err", err)
		return
	}
	if cap(data) <= maxScratch {
		r.scratch = data
	}
	r.add(ev.Hdr().Time, false, data)
}

func (r *Recorder) snapshot(ctx context.Context, reason string) {
	data, err := json.Marshal(Snapshot(ctx, r.opts.Providers, reason))
	if err != nil {
		r.log.Warn("snapshot not recorded", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(r.now(), true, data)
}

// add stores an entry, first dropping the oldest chunks its chunk would not
// fit beside, then whatever is older than the window. Called with mu held.
func (r *Recorder) add(t time.Time, snap bool, data []byte) {
	s := &r.store
	reuse := len(r.taps) == 0 // a capture may be reading dropped chunks
	if !s.room(len(data)) {
		for s.entries > 0 && s.held()+s.newChunkCost(len(data)) > r.opts.MaxBytes {
			r.evicted.Add(uint64(s.dropHead(reuse)))
		}
		if s.held()+s.newChunkCost(len(data)) > r.opts.MaxBytes {
			r.evicted.Add(1) // larger than the whole bound: recorded and evicted at once
			return
		}
	}
	e := entry{t: t, snap: snap, data: s.push(t, snap, data)}
	for tp := range r.taps {
		tp.offer(e)
	}
	cutoff := r.now().Add(-r.opts.Window)
	for {
		t, ok := s.oldest()
		if !ok || !t.Before(cutoff) {
			break
		}
		s.popOldest(reuse)
		r.evicted.Add(1)
	}
}

// held is the recorder's accounting of its memory. Called with mu held.
func (r *Recorder) held() int64 { return r.store.held() }

// Stats is the recorder's own accounting.
type Stats struct {
	Entries int `json:"entries"`
	// Bytes is what the recorder holds: the chunks its entries are stored in
	// (each entry's bytes plus a 13-byte header), whole, and the chunk list.
	// It stays at or under Options.MaxBytes.
	Bytes   int64     `json:"bytes"`
	Oldest  time.Time `json:"oldest"`
	Evicted uint64    `json:"evicted"`
	Dropped uint64    `json:"dropped"` // events the bus could not queue for the recorder
}

// Stats reports what the recorder holds.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Entries: r.store.entries, Bytes: r.held(), Evicted: r.evicted.Load()}
	s.Oldest, _ = r.store.oldest()
	if r.sub != nil {
		s.Dropped = r.sub.Dropped()
	}
	return s
}

// tap receives entries recorded while a capture runs.
type tap struct {
	ch      chan entry
	dropped atomic.Uint64
}

func (t *tap) offer(e entry) {
	select {
	case t.ch <- e:
	default:
		t.dropped.Add(1)
	}
}

// CaptureOptions say how long to keep capturing and why.
type CaptureOptions struct {
	Duration time.Duration
	Reason   string
	// FlushEvery is how often the open gzip member is closed; default 1s.
	FlushEvery time.Duration
}

// Capture writes the recorder's content, then every event that arrives until
// the duration ends (or ctx does), to out. The header and each flush form whole
// gzip members, so a capture that fails halfway (a full disk) leaves a readable
// prefix. It returns the end record it wrote, or the first write error.
func (r *Recorder) Capture(ctx context.Context, out io.Writer, opts CaptureOptions) (capture.End, error) {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	start := Snapshot(ctx, r.opts.Providers, "capture_start")
	h := r.opts.Header()
	h.StartTime, h.Reason, h.WindowSeconds = r.now().UTC(), opts.Reason, r.opts.Window.Seconds()

	// Copy the ring and start the tap atomically: nothing is missed or repeated.
	t := &tap{ch: make(chan entry, tapQueue)}
	// The past is views into the store's chunks: while a tap is registered no
	// dropped chunk is reused, so they stay as they are.
	r.mu.Lock()
	past := r.store.view()
	r.taps[t] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.taps, t)
		r.mu.Unlock()
	}()

	var end capture.End
	w, err := capture.NewWriter(out, h)
	if err != nil {
		return end, err
	}
	put := func(e entry) error {
		if e.snap {
			end.Snapshots++
			return w.WriteRawSnapshot(e.data)
		}
		end.Events++
		return w.WriteEvent(e.data)
	}
	if err := eachEntry(past, func(t time.Time, snap bool, data []byte) error {
		return put(entry{t: t, snap: snap, data: data})
	}); err != nil {
		return end, err
	}
	end.Snapshots++
	if err := w.WriteSnapshot(start); err != nil {
		return end, err
	}
	if err := w.Flush(); err != nil {
		return end, err
	}

	timer := time.NewTimer(opts.Duration)
	defer timer.Stop()
	flush := time.NewTicker(opts.FlushEvery)
	defer flush.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			break loop
		case <-flush.C:
			if err := w.Flush(); err != nil {
				return end, err
			}
		case e := <-t.ch:
			if err := put(e); err != nil {
				return end, err
			}
		}
	}
	// What was queued before the end still belongs to the capture.
	for drained := false; !drained; {
		select {
		case e := <-t.ch:
			if err := put(e); err != nil {
				return end, err
			}
		default:
			drained = true
		}
	}
	end.Snapshots++
	if err := w.WriteSnapshot(Snapshot(context.WithoutCancel(ctx), r.opts.Providers, "capture_end")); err != nil {
		return end, err
	}
	end.Time = r.now().UTC()
	end.Dropped = t.dropped.Load()
	if r.sub != nil {
		end.RecorderDropped = r.sub.Dropped()
	}
	if err := w.Close(end); err != nil {
		return end, fmt.Errorf("finish capture: %w", err)
	}
	return end, nil
}
