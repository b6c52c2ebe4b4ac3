// Package tracer is the Go side of the kernel boundary: it loads the CO-RE BPF
// sensors, attaches each with the best mode the kernel allows, reads their ring
// buffers and decodes records into typed events. Nothing outside this package
// touches cilium/ebpf.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// Options configures a Tracer. The zero value attaches every sensor in its best mode.
type Options struct {
	// Sensors to start; nil starts all (see SensorNames). Names prefixed
	// with "-" (all of them, then) start every sensor but those.
	Sensors []string
	// Attach forces a mode: key is a sensor name, or "*" for every sensor. A sensor
	// without programs for its forced mode is reported unavailable, never silently
	// attached another way.
	Attach map[string]Mode
	// WatchComms are the daemons the signal sensor watches; a trailing "*" makes a
	// prefix. At most 16, each at most 15 bytes.
	WatchComms []string
	// RingBufferBytes sizes each sensor's ring buffer (power of two, multiple of the
	// page size); 0 gives each sensor its own default (sensor.go: 4 MiB for
	// rename, 7.75 MiB in all).
	RingBufferBytes int
	// Latency configures the latency and seccomp sensors.
	Latency LatencyOptions
	// EventBuffer is the capacity of the Events channel; 0 means 4096.
	EventBuffer int
	// RetryInterval is how often sensors that could not attach are tried
	// again while the tracer runs (their kernel module may be loaded later);
	// 0 means DefaultRetryInterval, negative never retries.
	RetryInterval time.Duration
	Logger        *slog.Logger
}

func (o *Options) forcedMode(sensor string) (Mode, bool) {
	if m, ok := o.Attach[sensor]; ok {
		return m, true
	}
	m, ok := o.Attach["*"]
	return m, ok
}

// Tracer owns the loaded sensors.
type Tracer struct {
	opts   Options
	log    *slog.Logger
	events chan event.Event
	// running and status change after Start only in the retry loop, under
	// mapsMu; Close reads them without it once the loop has ended (retryDone).
	running []*running
	status  []sensor.Status // unavailable sensors
	wg      sync.WaitGroup
	// retryDone is made by Start and closed when the retry loop has ended (at
	// once if none runs); nil before Start.
	retryDone chan struct{}
	retries   atomic.Uint64 // retry attempts made, for tests
	closed    atomic.Bool
	// done is closed first thing in Close: a reader blocked handing an event to
	// a consumer that has gone away gives up on it (closing the ring buffer
	// wakes a reader waiting for records, not one waiting on the channel).
	done chan struct{}
	// mapsMu keeps Close from closing the sensors' maps while Status or an
	// on-demand reader (latency.go) uses them: the daemon reads status from
	// other goroutines while the tracer closes itself when its context ends.
	mapsMu     sync.RWMutex
	mapsClosed bool
}

type running struct {
	def      sensorDef
	att      *attached
	reader   *ringbuf.Reader
	received atomic.Uint64
	decodeEr atomic.Uint64
	lost     atomic.Uint64          // last events_lost read, reported once the maps are closed
	failed   atomic.Pointer[string] // why the reader stopped early, if it did
	// wake is the ring buffer's fd in Go's poller (pollFile); Close closes it.
	wake *os.File
	// polling is the programs' reader_polling flag (setPolling); nil when
	// the kernel cannot share it.
	polling *ebpf.Variable
	// failNext, set by tests, is the error the reader's next read of an
	// empty ring fails with, as a read failure would.
	failNext atomic.Pointer[error]
}

// New validates the options. It touches nothing in the kernel.
func New(opts Options) (*Tracer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 4096
	}
	if _, err := watchPatterns(opts.WatchComms); err != nil {
		return nil, err
	}
	known := map[string]bool{"*": true}
	for _, n := range SensorNames() {
		known[n] = true
	}
	sensors, err := selectSensors(opts.Sensors)
	if err != nil {
		return nil, err
	}
	opts.Sensors = sensors
	for n := range opts.Attach {
		if !known[n] {
			return nil, fmt.Errorf("attach override for unknown sensor %q (known: %v)", n, SensorNames())
		}
	}
	if err := opts.Latency.validate(); err != nil {
		return nil, err
	}
	// The kernel's size is 32 bits: 1<<32 would wrap to 0. The daemon's flag
	// bounds it far lower (internal/config.MaxRingBufferBytes).
	if rb := opts.RingBufferBytes; rb != 0 && (rb < 4096 || rb > 1<<30 || rb&(rb-1) != 0) {
		return nil, fmt.Errorf("ring buffer size %d: want a power of two from 4096 to 1 GiB", rb)
	}
	return &Tracer{
		opts:   opts,
		log:    opts.Logger,
		events: make(chan event.Event, opts.EventBuffer),
		done:   make(chan struct{}),
	}, nil
}

// Start loads and attaches the sensors and starts reading them. A sensor that
// cannot attach is logged and reported in Status, and tried again every
// RetryInterval (see retry.go); the others run. Start fails only when nothing
// can run at all. Readers stop when ctx ends or Close is called.
func (t *Tracer) Start(ctx context.Context) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lift RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	if err := checkKernel(hostProbes); err != nil {
		return err
	}
	t.retryDone = make(chan struct{})
	enabled := map[string]bool{}
	for _, n := range t.opts.Sensors {
		enabled[n] = true
	}
	every := t.opts.retryInterval()
	kernelBTF := btf.NewCache()
	var pend []*pending
	for _, s := range attachOrder(sensors()) {
		if len(enabled) > 0 && !enabled[s.name] {
			continue
		}
		r, err := t.attachSensor(s, kernelBTF)
		if err != nil {
			attrs := []any{"sensor", s.name, "reason", err.Error()}
			if every > 0 && s.retryable(&t.opts) {
				pend = append(pend, &pending{def: s, reason: err.Error()})
				attrs = append(attrs, "retry_every", every)
			}
			t.log.Warn("sensor unavailable", attrs...)
			t.status = append(t.status, sensor.Status{Name: s.name, Unavailable: err.Error()})
			continue
		}
		attrs := []any{"sensor", s.name, "mode", r.att.mode}
		if r.att.variant != "" {
			attrs = append(attrs, "variant", r.att.variant)
		}
		t.log.Info("sensor attached", attrs...)
		t.running = append(t.running, r)
	}
	if len(t.running) == 0 {
		close(t.retryDone)
		return errors.New("no sensor could attach; see the reasons logged above")
	}
	for _, r := range t.running {
		if r.reader == nil {
			continue // aggregates in the kernel, read on demand
		}
		t.wg.Add(1)
		go t.read(ctx, r)
	}
	if len(pend) > 0 {
		go t.retryLoop(ctx, every, pend)
	} else {
		close(t.retryDone)
	}
	go func() {
		<-ctx.Done()
		t.Close()
	}()
	return nil
}

// attachSensor attaches one sensor in its best mode and opens its ring buffer.
func (t *Tracer) attachSensor(s sensorDef, kernelBTF *btf.Cache) (*running, error) {
	att, err := s.attachBest(&t.opts, kernelBTF, t.tailHooks())
	if err != nil {
		return nil, err
	}
	r := &running{def: s, att: att}
	if s.decode != nil {
		if r.reader, err = ringbuf.NewReader(att.coll.Maps["events"]); err != nil {
			att.close()
			return nil, fmt.Errorf("open ring buffer: %w", err)
		}
		if r.wake, err = pollFile(att.coll.Maps["events"].FD()); err != nil {
			r.reader.Close()
			att.close()
			return nil, err
		}
		if v, ok := att.coll.Variables["reader_polling"]; ok && !v.ReadOnly() {
			r.polling = v
		}
	}
	return r, nil
}

// Runs says whether the sensor is among those this tracer starts (or tries
// to: it may be unavailable), however Options.Sensors spelled the selection.
func (t *Tracer) Runs(name string) bool {
	return len(t.opts.Sensors) == 0 && slices.Contains(SensorNames(), name) || slices.Contains(t.opts.Sensors, name)
}

// Events delivers decoded events. It is closed after Close has stopped every reader.
func (t *Tracer) Events() <-chan event.Event { return t.events }

// maxBatch bounds the events the reader decodes before it hands them on.
const maxBatch = 256

// read drains one sensor's ring buffer. When consumers fall behind it blocks, the
// ring buffer fills, and the kernel counts what it cannot reserve: back-pressure
// ends as a counted loss, never as unbounded memory.
//
// It waits in Go's network poller (r.wake), not in a blocking epoll_wait: a
// goroutine parked there holds no thread, so the runtime does not hand its
// processor to another thread on each wait. How long it waits, and whether
// records wake it, is its wakePolicy's choice (wakeup.go). It reads the ring
// only while the ring holds something (AvailableBytes reads the ring's
// positions from shared memory), so a drain makes no system call; ReadInto
// never blocks (a deadline in the past). What the ring holds is decoded (up to
// maxBatch) before any of it is handed on, then sent back to back: the
// pipeline, woken by the first event, finds the rest queued instead of being
// woken for each.
func (t *Tracer) read(ctx context.Context, r *running) {
	defer t.wg.Done()
	var rec ringbuf.Record
	batch := make([]event.Event, 0, maxBatch)
	flush := func() bool {
		ok := t.send(ctx, batch)
		clear(batch) // no references kept to events handed on
		batch = batch[:0]
		return ok
	}
	r.reader.SetDeadline(time.Unix(1, 0))
	wake, err := r.wake.SyscallConn()
	if err != nil {
		t.readFailed(r, err)
		return
	}
	var policy wakePolicy
	var deadline time.Time // of the wait r.wake has armed
	timedOut := false
	for {
		n := 0 // records read in this drain
		for {
			var err error
			if r.reader.AvailableBytes() == 0 {
				f := r.failNext.Swap(nil)
				if f == nil {
					break // empty
				}
				err = *f
			} else if err = r.reader.ReadInto(&rec); errors.Is(err, os.ErrDeadlineExceeded) {
				break // only discarded records were left
			}
			if err != nil {
				if flush() && !errors.Is(err, ringbuf.ErrClosed) {
					t.readFailed(r, err)
				}
				return
			}
			n++
			if ev, err := r.def.decode(rec.RawSample); err != nil {
				r.decodeEr.Add(1)
				t.log.Debug("undecodable record", "sensor", r.def.name, "err", err)
			} else {
				r.received.Add(1)
				batch = append(batch, ev)
			}
			// Remaining is how far the producer was past this record when it
			// was read: zero means nothing else was in the ring.
			if rec.Remaining == 0 || len(batch) == maxBatch {
				if !flush() {
					return
				}
			}
		}
		if !flush() {
			return
		}
		switched, next := policy.drained(time.Now(), n, timedOut)
		if switched {
			t.setPolling(r, policy.polling)
		}
		// Re-armed only when it changes or has passed: each costs a timer.
		if timedOut || !next.Equal(deadline) {
			r.wake.SetReadDeadline(next)
			deadline = next
		}
		// The first call says whether to read before waiting at all: when
		// polling, never (the records are left for the next period); else
		// when records are there. Any later call follows a wakeup.
		calls := 0
		err := wake.Read(func(uintptr) bool {
			calls++
			return calls > 1 || !policy.polling && r.reader.AvailableBytes() > 0
		})
		timedOut = errors.Is(err, os.ErrDeadlineExceeded)
		if err != nil && !timedOut {
			select {
			case <-t.done: // Close closed r.wake ("use of closed file")
			default:
				t.readFailed(r, err)
			}
			return
		}
	}
}

// setPolling tells a sensor's programs whether its reader polls the ring
// (bpf/common.h, reader_polling). A kernel that cannot share the variable with
// userspace keeps every record waking the reader: the reader then only polls
// records that were going to wake it anyway.
func (t *Tracer) setPolling(r *running, polling bool) {
	if r.polling == nil {
		return
	}
	var v uint32
	if polling {
		v = 1
	}
	if err := r.polling.Set(v); err != nil {
		t.log.Warn("reader cannot switch wakeups; every record wakes it", "sensor", r.def.name, "err", err)
		r.polling = nil
	}
}

// readFailed stops a sensor whose ring buffer can no longer be read.
func (t *Tracer) readFailed(r *running, err error) {
	reason := fmt.Sprintf("ring buffer read failed: %v", err)
	r.failed.Store(&reason)
	// Nobody reads this sensor any more: stop paying for its programs.
	// Its maps stay open until Close for the lost-event count.
	r.att.detach()
	t.log.Error("sensor stopped", "sensor", r.def.name, "reason", reason)
}

// pollFile is a ring buffer map's fd, duplicated and non-blocking, as a file
// Go's network poller waits on: it is readable when the ring holds records
// and the kernel has woken its waiters.
func pollFile(fd int) (*os.File, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup ring buffer fd: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("ring buffer fd non-blocking: %w", err)
	}
	return os.NewFile(uintptr(dup), "ringbuf"), nil
}

// send hands a batch on, in order; false when the tracer or ctx has ended.
func (t *Tracer) send(ctx context.Context, batch []event.Event) bool {
	for _, ev := range batch {
		select {
		case t.events <- ev:
		case <-ctx.Done():
			return false
		case <-t.done:
			return false
		}
	}
	return true
}

// Status reports every sensor, running or not, with its counters.
func (t *Tracer) Status() []sensor.Status {
	t.mapsMu.RLock()
	defer t.mapsMu.RUnlock()
	out := make([]sensor.Status, 0, len(t.running)+len(t.status))
	for _, r := range t.running {
		if !t.mapsClosed {
			r.lost.Store(lostEvents(r.att.coll.Maps["events_lost"]))
		}
		st := sensor.Status{
			Name:           r.def.name,
			Mode:           string(r.att.mode),
			Variant:        r.att.variant,
			EventsReceived: r.received.Load(),
			EventsLost:     r.lost.Load(),
			DecodeErrors:   r.decodeEr.Load(),
		}
		if reason := r.failed.Load(); reason != nil {
			st.Mode, st.Unavailable = "", *reason
		}
		out = append(out, st)
	}
	out = append(out, t.status...)
	return out
}

func lostEvents(m *ebpf.Map) uint64 {
	if m == nil {
		return 0
	}
	var perCPU []uint64
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return 0
	}
	var sum uint64
	for _, n := range perCPU {
		sum += n
	}
	return sum
}

// Close detaches every sensor and waits for the readers; then Events is closed.
// It is safe to call more than once.
func (t *Tracer) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	// The retry loop may still add a sensor and its reader: wait for it to
	// end, after which running no longer changes.
	if t.retryDone != nil {
		<-t.retryDone
	}
	// Readers end before their rings close: a reader reads a ring's
	// positions from its mapping (AvailableBytes), which Close unmaps.
	for _, r := range t.running {
		if r.reader != nil {
			r.wake.Close() // ends a reader's wait
		}
	}
	t.wg.Wait()
	for _, r := range t.running {
		if r.reader != nil {
			r.reader.Close()
		}
	}
	t.mapsMu.Lock()
	// Last attached first: a sensor in tail_call mode leaves the latency
	// sensor's prog arrays before that sensor goes.
	for _, r := range slices.Backward(t.running) {
		r.lost.Store(lostEvents(r.att.coll.Maps["events_lost"]))
		r.att.close()
	}
	t.mapsClosed = true
	t.mapsMu.Unlock()
	close(t.events)
	return nil
}

// detach unhooks the sensor's programs (closes its links, or empties its
// prog-array slots), so they stop running, and keeps its maps. Close calls it,
// and the sensor's reader before Close waits for readers.
func (a *attached) detach() {
	for _, h := range a.hooks {
		h.Close()
	}
	a.hooks = nil
}

// selectSensors resolves a sensor list: names, or only "-name" exclusions
// (every sensor but those). Unknown names are errors.
func selectSensors(list []string) ([]string, error) {
	names := SensorNames()
	excluded := map[string]bool{}
	exclusions := 0
	for _, n := range list {
		name, exclude := strings.CutPrefix(n, "-")
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("unknown sensor %q (known: %v)", name, names)
		}
		if exclude {
			excluded[name] = true
			exclusions++
		}
	}
	if exclusions == 0 {
		return list, nil
	}
	if exclusions != len(list) {
		return nil, fmt.Errorf("sensors %v: list sensors to run, or only -name to run all but those, not both", list)
	}
	var out []string
	for _, n := range names {
		if !excluded[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("every sensor excluded: nothing to run")
	}
	return out, nil
}
