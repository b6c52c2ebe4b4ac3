// Package server is the daemon's HTTP face: /metrics, the /events stream,
// /status, /healthz and /readyz, on network listeners (TLS and basic auth
// through exporter-toolkit) and on the 0600 unix control socket.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/event"
)

// StreamQueue is how many events a slow /events client may fall behind before
// it starts missing events (counted as subscriber "http").
const StreamQueue = 1024

// MaxStreams bounds concurrent /events clients: each holds a goroutine and a
// queue, and every published event visits every queue.
const MaxStreams = 64

// streamWriteTimeout ends a stream whose client stopped reading.
const streamWriteTimeout = 30 * time.Second

// Options wires the server to the rest of the daemon.
type Options struct {
	Metrics http.Handler
	Bus     *bus.Bus
	// Status returns the /status document; it is encoded as JSON.
	Status func() any
	Logger *slog.Logger
	// Routes are further handlers by ServeMux pattern (e.g. "POST /capture"),
	// for parts of the daemon that own their endpoint.
	Routes map[string]http.Handler
	// Ready tells /readyz whether the daemon is ready (nil) or why not; nil
	// Ready is always ready.
	Ready func() error
	// Socket is the control socket's path, named in the answer to a private
	// route asked without credentials.
	Socket string
}

// Server serves until its context ends.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	streams chan struct{} // one token per open /events stream
}

// New builds the routes.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), streams: make(chan struct{}, MaxStreams)}
	s.mux.Handle("GET /metrics", opts.Metrics)
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /status", s.status)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	for pattern, h := range opts.Routes {
		s.mux.Handle(pattern, h)
	}
	return s
}

// Serve serves on every endpoint until ctx ends, then shuts down: open
// /events streams end because their request contexts derive from ctx. A
// network endpoint serves the private routes only to clients its web config
// authenticates (see gate).
func (s *Server) Serve(ctx context.Context, eps ...Endpoint) error {
	errc := make(chan error, len(eps))
	var servers []*http.Server
	for _, ep := range eps {
		h := http.Handler(s.mux)
		if !ep.Trusted {
			h = gate(s.mux, ep.WebConfig, Forbidden(s.opts.Socket))
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
		}
		servers = append(servers, srv)
		go func() {
			var err error
			if ep.Trusted || ep.WebConfig == "" {
				err = srv.Serve(ep.Listener)
			} else {
				flags := &web.FlagConfig{WebConfigFile: &ep.WebConfig}
				err = web.Serve(ep.Listener, srv, flags, s.opts.Logger.With("component", "web"))
			}
			errc <- err
		}()
	}
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.opts.Status(), s.opts.Logger)
}

// JSONHandler serves the document doc returns, for read-only JSON endpoints
// that other parts of the daemon own (e.g. /residue).
func JSONHandler(doc func() any, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, doc(), log) })
}

// writeJSON encodes v whole before answering: a value that cannot be
// encoded (a time past year 9999, say) is a 500 with the reason, never a 200
// with an empty or cut body.
func writeJSON(w http.ResponseWriter, v any, log *slog.Logger) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		log.Error("encode JSON response", "err", err)
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}

// Filter selects events for a stream.
type Filter struct {
	Types     map[string]bool // empty: all
	Container string          // full id or a prefix of at least 12 hex chars; empty: all
}

// ParseFilter reads ?type=a,b&container=ID.
func ParseFilter(q map[string][]string) (Filter, error) {
	f := Filter{Types: map[string]bool{}}
	for _, v := range q["type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				// A typo would otherwise give a stream that stays silent forever.
				if !slices.Contains(event.Types(), t) {
					return f, fmt.Errorf("type %q: unknown event type (known: %s)", t, strings.Join(event.Types(), ", "))
				}
				f.Types[t] = true
			}
		}
	}
	if c := strings.Join(q["container"], ""); c != "" {
		if len(c) < 12 || len(c) > 64 {
			return f, fmt.Errorf("container %q: want a full 64-char id or a short id of at least 12 chars", c)
		}
		f.Container = strings.ToLower(c)
	}
	return f, nil
}

// Match tells whether ev passes the filter.
func (f Filter) Match(ev event.Event) bool {
	h := ev.Hdr()
	if len(f.Types) > 0 && !f.Types[h.Type] {
		return false
	}
	return f.Container == "" || strings.HasPrefix(h.ContainerID, f.Container)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		http.Error(w, fmt.Sprintf("too many /events streams (at most %d)", MaxStreams), http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	sub := s.opts.Bus.Subscribe("http", StreamQueue, f.Match)
	defer s.opts.Bus.Unsubscribe(sub)

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	var line []byte
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			var err error
			if line, err = event.AppendJSON(line[:0], ev); err != nil {
				return
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return
			}
			// Flush when caught up: one write per batch under load, and
			// each event at once when they come one at a time.
			if len(sub.C()) > 0 {
				continue
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
