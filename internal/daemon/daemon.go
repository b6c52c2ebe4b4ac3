// Package daemon assembles the running observer from its parts: an event source
// (the tracer), container correlation, metrics, the event bus, the event file
// and the HTTP server.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/eventlog"
	"github.com/observer-dev/observer/internal/metrics"
	"github.com/observer-dev/observer/internal/pipeline"
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
	// Residue lists leaked semaphore arrays and veths (see /residue for the inventories).
	Residue []residue.Item `json:"residue"`
}

// Run serves until ctx ends or the source closes, then stops every part.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	ln, err := net.Listen("tcp", opts.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := bus.New()
	m := metrics.New(metrics.Sources{Sensors: opts.Source.Status, BusDropped: events.Dropped})
	det := newResidueDetector(opts, events, log)
	m.Registry().MustRegister(det)
	started := time.Now().UTC()
	kernel := kernelRelease()
	status := func() any {
		return Status{
			Version:           opts.Version,
			Kernel:            kernel,
			StartedAt:         started,
			Sensors:           opts.Source.Status(),
			Containers:        opts.Resolver.Containers(),
			SubscriberDropped: events.Dropped(),
			Residue:           det.Residue(),
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if path := opts.Config.EventsFile; path != "" {
		w, err := eventlog.Open(path)
		if err != nil {
			ln.Close()
			return err
		}
		sub := events.Subscribe("file", eventlog.Queue, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			if err := eventlog.Write(ctx, sub, w); err != nil {
				errs <- err
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-opts.Resolver.Gone():
				m.ForgetContainer(id)
			}
		}
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		det.Run(ctx)
	}()

	srv := server.New(server.Options{Metrics: m.Handler(), Bus: events, Status: status, Logger: log,
		Residue: func() any { return det.Report() }})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			errs <- err
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "endpoints", "/metrics /events /status /residue /healthz")

	p := &pipeline.Pipeline{Correlator: opts.Resolver, Observers: []pipeline.Observer{m, det}, Bus: events}
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
	events.Close()
	wg.Wait()
	return runErr
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
