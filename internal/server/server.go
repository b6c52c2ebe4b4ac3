// Package server is the daemon's HTTP face: /metrics, the /events stream,
// /status and /healthz.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

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
	for pattern, h := range opts.Routes {
		s.mux.Handle(pattern, h)
	}
	return s
}

// Handler exposes the routes, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx ends, then shuts down: open /events streams end
// because their request contexts derive from ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
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
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if err := enc.Encode(ev); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
