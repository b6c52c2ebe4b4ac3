package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/recorder"
)

// MaxDuration bounds a requested capture's duration.
const MaxDuration = 10 * time.Minute

// maxManual is how many manual captures (HTTP, signal) may run at once.
const maxManual = 2

// Options configure a Manager.
type Options struct {
	Recorder *recorder.Recorder
	Store    *Store
	// Duration of incident and signal-triggered captures.
	Duration time.Duration
	// Cooldown after an incident capture ends before the next may start.
	Cooldown time.Duration
	Logger   *slog.Logger
}

// Manager runs captures: incident ones one at a time with a cooldown, manual
// ones (HTTP, SIGUSR1) at most maxManual at once.
type Manager struct {
	opts Options
	log  *slog.Logger

	// ctx is what Fire and Signal captures run under: cancelled when Run's
	// context ends, whether they started before or after Run did.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	busy   atomic.Bool // an incident capture is running
	manual chan struct{}

	mu sync.Mutex
	// closed: Run's context ended; no capture starts any more. Fire and Signal
	// check it and call wg.Add under mu, so no Add races Run's wg.Wait.
	closed   bool
	quietEnd time.Time // no incident capture before this

	incidents  *prometheus.CounterVec
	captures   *prometheus.CounterVec
	suppressed prometheus.Counter
}

// NewManager returns a manager; Run gives it its lifetime.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts: opts, log: opts.Logger.With("component", "capture"),
		ctx: ctx, cancel: cancel,
		manual: make(chan struct{}, maxManual),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_incidents_total", Help: "Incident rules that fired.",
		}, []string{"rule"}),
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_captures_total", Help: "Captures taken, by trigger (incident, signal, http) and result (ok, error).",
		}, []string{"trigger", "result"}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "observer_incident_captures_suppressed_total", Help: "Incidents that started no capture: one was running or the cooldown had not passed.",
		}),
	}
}

// Collectors are the manager's metrics.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.incidents, m.captures, m.suppressed}
}

// Run gives the manager its lifetime: when ctx ends, no capture starts any
// more, running ones are cancelled (they end their file cleanly) and Run
// returns once they have.
func (m *Manager) Run(ctx context.Context) {
	<-ctx.Done()
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Fire starts an incident capture unless one is running or the cooldown has
// not passed. It never blocks: rules call it from the pipeline.
func (m *Manager) Fire(inc Incident) {
	m.incidents.WithLabelValues(inc.Rule).Inc()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.log.Debug("incident while shutting down; no capture", "rule", inc.Rule, "detail", inc.Detail)
		return
	}
	if time.Now().Before(m.quietEnd) || !m.busy.CompareAndSwap(false, true) {
		m.mu.Unlock()
		m.suppressed.Inc()
		m.log.Debug("incident; no new capture (one running or cooling down)", "rule", inc.Rule, "detail", inc.Detail)
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	m.log.Warn("incident: capturing", "rule", inc.Rule, "detail", inc.Detail, "duration", m.opts.Duration)
	go func() {
		defer m.wg.Done()
		defer m.busy.Store(false)
		m.toFile(m.ctx, "incident", inc.Reason(), m.opts.Duration)
		m.mu.Lock()
		m.quietEnd = time.Now().Add(m.opts.Cooldown)
		m.mu.Unlock()
	}()
}

// Signal takes a capture because of SIGUSR1, in the background.
func (m *Manager) Signal() {
	select {
	case m.manual <- struct{}{}:
	default:
		m.log.Warn("SIGUSR1: captures already running; ignored", "running", maxManual)
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.manual
		m.log.Info("SIGUSR1 while shutting down; no capture")
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer func() { <-m.manual }()
		m.toFile(m.ctx, "signal", "signal SIGUSR1", m.opts.Duration)
	}()
}

// Result describes a capture written to the store.
type Result struct {
	File        string  `json:"file"`
	Bytes       int64   `json:"bytes"`
	Events      uint64  `json:"events"`
	Snapshots   uint64  `json:"snapshots"`
	Dropped     uint64  `json:"dropped"`
	DurationSec float64 `json:"duration_seconds"`
	Error       string  `json:"error,omitempty"`
}

// toFile writes one capture into the store. A failure (a full disk) leaves the
// partial file, which stays readable up to its last complete member.
func (m *Manager) toFile(ctx context.Context, trigger, reason string, d time.Duration) (Result, error) {
	f, err := m.opts.Store.Create(reason, time.Now())
	if err != nil {
		m.captures.WithLabelValues(trigger, "error").Inc()
		m.log.Error("capture failed", "trigger", trigger, "err", err)
		return Result{Error: err.Error()}, err
	}
	res := Result{File: f.Name(), DurationSec: d.Seconds()}
	end, err := m.opts.Recorder.Capture(ctx, f, recorder.CaptureOptions{Duration: d, Reason: reason})
	// The size is the open file's (the path may no longer name it), and the
	// path must still name it: otherwise what was written is gone.
	written, serr := f.Stat()
	if serr == nil {
		res.Bytes = written.Size()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close capture: %w", cerr)
	}
	if err == nil && serr != nil {
		err = fmt.Errorf("capture %s: %w", res.File, serr)
	}
	if atPath, perr := os.Stat(res.File); err == nil && (perr != nil || !os.SameFile(written, atPath)) {
		err = fmt.Errorf("capture %s was removed while it was being written (another process rotating the directory?)", res.File)
	}
	if err == nil && res.Bytes == 0 {
		err = fmt.Errorf("capture %s: nothing was written", res.File)
	}
	if err != nil && res.Bytes == 0 {
		// Nothing readable: no empty file is left behind.
		if os.Remove(res.File) == nil {
			res.File = ""
		}
	}
	m.opts.Store.Done(f.Name())
	res.Events, res.Snapshots, res.Dropped = end.Events, end.Snapshots, end.Dropped
	if err != nil {
		res.Error = err.Error()
		m.captures.WithLabelValues(trigger, "error").Inc()
		if res.File != "" {
			m.log.Error("capture failed; the partial file is readable up to its last flush", "trigger", trigger, "file", res.File, "bytes", res.Bytes, "err", err)
		} else {
			m.log.Error("capture failed; nothing was written", "trigger", trigger, "err", err)
		}
		return res, err
	}
	m.captures.WithLabelValues(trigger, "ok").Inc()
	m.log.Info("capture written", "trigger", trigger, "file", res.File, "bytes", res.Bytes, "events", res.Events, "dropped", res.Dropped)
	return res, nil
}

// StreamWriteTimeout ends a streamed capture whose client stopped reading
// (the same bound as a stalled /events client).
var StreamWriteTimeout = 30 * time.Second

// deadlineWriter sets a write deadline before each write, and flushes.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(StreamWriteTimeout))
	return d.w.Write(p)
}

func (d deadlineWriter) Flush() error {
	d.rc.SetWriteDeadline(time.Now().Add(StreamWriteTimeout))
	return d.rc.Flush()
}

// ServeHTTP is POST /capture?duration=30s[&reason=TEXT][&stream=1]. It waits
// for the capture to end, then answers with the Result as JSON; with stream=1
// the capture itself is the response body (application/gzip), flushed member
// by member, and nothing is stored.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := 30 * time.Second
	if s := q.Get("duration"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 || d > MaxDuration {
			http.Error(w, fmt.Sprintf("duration %q: want a Go duration between 0s and %v", s, MaxDuration), http.StatusBadRequest)
			return
		}
	}
	reason := "manual"
	if s := q.Get("reason"); s != "" {
		reason = "manual: " + s
	}
	stream, _ := strconv.ParseBool(q.Get("stream"))
	select {
	case m.manual <- struct{}{}:
		defer func() { <-m.manual }()
	default:
		http.Error(w, fmt.Sprintf("%d captures already running; retry later", maxManual), http.StatusTooManyRequests)
		return
	}
	if stream {
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="capture.jsonl.gz"`)
		// A client that stops reading must not hold a capture slot: every
		// write has a deadline, and a stalled client ends its capture.
		end, err := m.opts.Recorder.Capture(r.Context(), deadlineWriter{w, http.NewResponseController(w)}, recorder.CaptureOptions{Duration: d, Reason: reason})
		switch {
		case err == nil:
			m.captures.WithLabelValues("http", "ok").Inc()
			m.log.Info("capture streamed", "events", end.Events, "dropped", end.Dropped)
		case r.Context().Err() != nil:
			m.captures.WithLabelValues("http", "error").Inc()
			m.log.Warn("streamed capture ended early: the client went away", "events", end.Events)
		default:
			m.captures.WithLabelValues("http", "error").Inc()
			m.log.Warn("streamed capture failed (a client that stopped reading is cut off after "+StreamWriteTimeout.String()+")", "events", end.Events, "err", err)
		}
		return
	}
	res, err := m.toFile(r.Context(), "http", reason, d)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
	}
	json.NewEncoder(w).Encode(res)
}
