// Package daemon assembles the running observer from its parts: an event source
// (the tracer), container correlation, metrics, the event bus, the event file
// and the HTTP server.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/eventlog"
	"github.com/observer-dev/observer/internal/latency"
	"github.com/observer-dev/observer/internal/metrics"
	"github.com/observer-dev/observer/internal/pipeline"
	"github.com/observer-dev/observer/internal/recorder"
	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/server"
)

// Source produces events: the tracer on a live host.
type Source interface {
	Events() <-chan event.Event
	Status() []sensor.Status
}

// Resolver is container correlation (container.Resolver).
type Resolver interface {
	pipeline.Correlator
	Containers() []container.Container
	Gone() <-chan string
}

// Options are the daemon's parts.
type Options struct {
	Config   *config.Config
	Source   Source
	Resolver Resolver
	Version  string
	Logger   *slog.Logger
	// Listener, when set, is used instead of Config.Listen and Config.Socket,
	// and is trusted like the control socket: every route, no credentials (tests).
	Listener net.Listener
	// SourceInfo, when set, adds a "source" section to /status (a replay's progress).
	SourceInfo func() any
	// SnapshotProviders add sections to the flight recorder's state snapshots,
	// after the built-in ones (see forensics.go).
	SnapshotProviders []recorder.Provider
	// Latency reads the in-kernel syscall latency histograms (the tracer); nil
	// when the latency and seccomp sensors are off.
	Latency      latency.Source
	LatencyTopN  int
	SyscallLabel bool
	// ContainersOnly keeps the latency sensor's tracked cgroups in sync with the resolver.
	ContainersOnly bool
	// Offline is set by a replay: no kernel is observed. The residue detectors
	// then scan nothing (not this machine's /proc, sysvipc or rtnetlink); their
	// state comes from the replayed events and the capture's snapshots, which
	// Offline delivers.
	Offline SnapshotFeed
}

// Status is the /status document.
type Status struct {
	Version    string                `json:"version"`
	Kernel     string                `json:"kernel"`
	StartedAt  time.Time             `json:"started_at"`
	Sensors    []sensor.Status       `json:"sensors"`
	Containers []container.Container `json:"containers"`
	// SubscriberDropped counts events slow consumers missed, by consumer.
	SubscriberDropped map[string]uint64 `json:"subscriber_dropped_events"`
	Recorder          *recorder.Stats   `json:"recorder,omitempty"`
	// GoMemoryLimit is the Go runtime's soft memory limit and where it came from.
	GoMemoryLimit MemoryLimit `json:"go_memory_limit"`
	// GoMaxProcs is how many processors run the daemon's Go code.
	GoMaxProcs MaxProcs `json:"go_max_procs"`
	Source     any      `json:"source,omitempty"`
	// SyscallLatency summarises the latency sensor per container.
	SyscallLatency *latency.Summary `json:"syscall_latency,omitempty"`
	// Residue lists leaked semaphore arrays and veths (see /residue for the
	// inventories), at most residue.MaxReportItems; ResidueOmitted counts the rest.
	Residue        []residue.Item `json:"residue"`
	ResidueOmitted int            `json:"residue_omitted,omitempty"`
}

// Run serves until ctx ends or the source closes, then stops every part.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	eps, err := listen(opts, log)
	if err != nil {
		return err
	}
	closeListeners := func() { closeAll(eps) }
	ln := eps[0].Listener
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := bus.New()
	m := metrics.New(metrics.Sources{Sensors: opts.Source.Status, BusDropped: events.Dropped})
	if opts.Config.PodLabels {
		m.RegisterPodInfo(func() []metrics.PodInfo {
			var out []metrics.PodInfo
			for _, c := range opts.Resolver.Containers() {
				if c.Pod.Pod != "" {
					out = append(out, metrics.PodInfo{ContainerID: c.ID, Pod: c.Pod.Pod, Namespace: c.PodNamespace, Container: c.PodContainer})
				}
			}
			return out
		})
	}
	var lat *latency.Latency
	if opts.Latency != nil {
		// The latency sensor also needs each container's cgroups (container.Resolver has them).
		res, ok := opts.Resolver.(latency.Resolver)
		if !ok {
			closeListeners()
			return fmt.Errorf("latency: resolver %T cannot list container cgroups", opts.Resolver)
		}
		lat = latency.New(latency.Options{
			Source: opts.Latency, Resolver: res, Label: m.ContainerLabel,
			TopN: opts.LatencyTopN, SyscallLabel: opts.SyscallLabel, ContainersOnly: opts.ContainersOnly, Logger: log,
		})
		m.Registry().MustRegister(lat)
	}
	// Derived events (residue) enter the pipeline through p.Inject; its
	// observers are complete below, before it runs.
	p := &pipeline.Pipeline{Correlator: opts.Resolver, Bus: events}
	det := newResidueDetector(opts, p.Inject, log)
	opts.SnapshotProviders = append(residueProviders(det), opts.SnapshotProviders...)
	m.Registry().MustRegister(det, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "observer_pipeline_injected_dropped_events_total",
		Help: "Events produced inside the daemon (residue) dropped because the pipeline's inject queue was full.",
	}, func() float64 { return float64(p.InjectDropped()) }))
	started := time.Now().UTC()
	kernel := kernelRelease()
	// Open the event file before any goroutine starts, so a bad path leaves nothing running.
	var eventFile *eventlog.File
	if path := opts.Config.EventsFile; path != "" {
		var err error
		if eventFile, err = eventlog.Open(path); err != nil {
			closeListeners()
			return err
		}
	}
	var wg sync.WaitGroup
	memLimit := setMemoryLimit(opts.Config.Forensics, log)
	procs := setMaxProcs(log)
	fx, err := startForensics(ctx, &wg, opts, events, m, kernel)
	if err != nil {
		closeListeners()
		if eventFile != nil {
			eventFile.Close()
		}
		return err
	}
	status := func() any {
		st := Status{
			Version:           opts.Version,
			Kernel:            kernel,
			StartedAt:         started,
			Sensors:           opts.Source.Status(),
			Containers:        opts.Resolver.Containers(),
			SubscriberDropped: events.Dropped(),
			Recorder:          fx.stats(),
			GoMemoryLimit:     memLimit,
			GoMaxProcs:        procs,
		}
		st.Residue = det.Residue()
		if n := len(st.Residue); n > residue.MaxReportItems {
			st.Residue, st.ResidueOmitted = st.Residue[:residue.MaxReportItems], n-residue.MaxReportItems
		}
		if opts.SourceInfo != nil {
			st.Source = opts.SourceInfo()
		}
		if lat != nil {
			sum := lat.Summary()
			st.SyscallLatency = &sum
		}
		return st
	}

	errs := make(chan error, 1)
	if eventFile != nil {
		sub := events.Subscribe("file", eventlog.Queue, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer eventFile.Close()
			reopened := func(err error) {
				if err != nil {
					log.Error("event file not reopened; still writing to the file it had open", "file", opts.Config.EventsFile, "err", err)
					return
				}
				log.Info("event file reopened", "file", opts.Config.EventsFile)
			}
			// A full disk or a closed stdout never ends the daemon: the file
			// resumes when it takes writes again, every event missed meanwhile
			// counted in observer_subscriber_dropped_events_total{subscriber="file"}.
			failed := func(err error) {
				if err != nil {
					log.Error("event file write failed; retrying, missed events are counted as dropped", "file", opts.Config.EventsFile,
						"retry_every", eventlog.RetryInterval, "err", err)
					return
				}
				log.Info("event file resumed", "file", opts.Config.EventsFile, "dropped_so_far", sub.Dropped())
			}
			if err := eventFile.Write(sub, reopened, failed); err != nil {
				log.Error("event file stopped; events still reach /events, metrics and captures", "file", opts.Config.EventsFile, "err", err)
				events.Unsubscribe(sub)
			}
		}()
	}

	// SIGHUP reopens the event file (logrotate's postrotate); it never stops the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if eventFile == nil {
					log.Info("SIGHUP: no event file to reopen")
					continue
				}
				eventFile.Reopen()
			}
		}
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-opts.Resolver.Gone():
				// Kernel figures first: a scrape between the two would recreate the label.
				if lat != nil {
					lat.Forget(id)
				}
				m.ForgetContainer(id)
			}
		}
	}()

	routes := map[string]http.Handler{"GET /residue": server.JSONHandler(func() any { return det.Report() }, log)}
	for pattern, h := range fx.routes {
		routes[pattern] = h
	}
	if lat != nil {
		routes["GET /latency"] = lat.Handler()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat.Run(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		det.Run(ctx)
	}()
	srv := server.New(server.Options{Metrics: m.Handler(), Bus: events, Status: status, Logger: log, Routes: routes,
		Ready: readiness(opts), Socket: opts.Config.Socket})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, eps...); err != nil {
			errs <- err
		}
	}()
	endpoints := "/metrics /healthz /readyz /events /status"
	for pattern := range routes {
		endpoints += " " + pattern
	}
	serving := []any{"addr", ln.Addr().String()}
	if len(eps) > 1 {
		serving = append(serving, "socket", eps[1].Listener.Addr().String())
	}
	log.Info("serving", append(serving, "endpoints", endpoints)...)

	p.Observers = append([]pipeline.Observer{m, det}, fx.observers...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, opts.Source.Events())
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case <-done:
	case runErr = <-errs:
	}
	cancel()
	<-done
	// Closing the bus ends every subscriber once it has written what it holds.
	events.Close()
	waitAtMost(&wg, shutdownWait, log)
	return runErr
}

// shutdownWait bounds how long shutdown waits for consumers (e.g. an event file
// on a stalled pipe): SIGTERM must end the daemon.
const shutdownWait = 5 * time.Second

func waitAtMost(wg *sync.WaitGroup, d time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		log.Warn("shutdown: consumers still busy; exiting without them", "waited", d)
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// listen opens the daemon's endpoints: --listen first, then the control
// socket. On a network listener without credentials only /metrics, /healthz
// and /readyz answer (they all used to), and whoever runs the daemon the old
// way is told so in one line.
func listen(opts Options, log *slog.Logger) ([]server.Endpoint, error) {
	if opts.Listener != nil {
		return []server.Endpoint{{Listener: opts.Listener, Trusted: true}}, nil
	}
	cfg := opts.Config
	ln, trusted, err := server.Listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	eps := []server.Endpoint{{Listener: ln, Trusted: trusted, WebConfig: cfg.WebConfigFile}}
	if cfg.Socket != "" {
		sock, err := server.ListenUnix(cfg.Socket)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket (--socket none disables it): %w", err)
		}
		eps = append(eps, server.Endpoint{Listener: sock, Trusted: true})
	}
	if !trusted {
		auth := false
		if cfg.WebConfigFile != "" {
			if auth, err = server.WebConfigAuthenticates(cfg.WebConfigFile); err != nil {
				closeAll(eps)
				return nil, fmt.Errorf("-web.config.file: %w", err)
			}
		}
		if !auth {
			via := "--socket PATH"
			if cfg.Socket != "" {
				via = "the socket " + cfg.Socket + " (root)"
			}
			if cfg.Socket == server.DefaultSocket {
				via += ", which the observer CLI uses by default"
			}
			log.Warn("access: on "+ln.Addr().String()+" only /metrics, /healthz and /readyz are open; "+
				"/events, /status, /residue, /latency and /capture answer 403 there (they used to be open to anyone who reached the port): use "+via+
				", or basic_auth_users in --web.config.file", "addr", ln.Addr().String())
		}
	}
	return eps, nil
}

func closeAll(eps []server.Endpoint) {
	for _, ep := range eps {
		ep.Listener.Close()
	}
}

// readiness is /readyz: every sensor attached or reported unavailable, and
// the container resolver's first walk (cgroups and Docker's list) done.
func readiness(opts Options) func() error {
	return func() error {
		for _, st := range opts.Source.Status() {
			if st.Mode == "" && st.Unavailable == "" {
				return fmt.Errorf("sensor %s is starting", st.Name)
			}
		}
		if r, ok := opts.Resolver.(interface{ Ready() error }); ok {
			if err := r.Ready(); err != nil {
				return err
			}
		}
		return nil
	}
}
