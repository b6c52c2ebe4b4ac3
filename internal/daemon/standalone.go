package daemon

import (
	"context"
	"io"
	"sync"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/pipeline"
	"github.com/observer-dev/observer/internal/recorder"
)

// Capture runs the event path without a server (no daemon is running) and
// writes a capture of what happens during copts.Duration to out. The recorder
// starts empty: there is no past to include. The residue detectors run as in
// the daemon (opts.Config gives their grace, interval and Docker host), so the
// capture's snapshots hold the semaphores and veths left behind, which is often
// why one captures a node whose daemon will not start.
func Capture(ctx context.Context, opts Options, out io.Writer, copts recorder.CaptureOptions) (capture.End, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := bus.New()
	kernel := kernelRelease()
	p := &pipeline.Pipeline{Correlator: opts.Resolver, Bus: b}
	det := newResidueDetector(opts, p.Inject, opts.Logger)
	opts.SnapshotProviders = append(residueProviders(det), opts.SnapshotProviders...)
	p.Observers = []pipeline.Observer{det}
	rec, err := recorder.New(recorder.Options{
		Providers: snapshotProviders(opts, b, kernel),
		Header:    captureHeader(opts, kernel),
		Logger:    opts.Logger,
	})
	if err != nil {
		return capture.End{}, err
	}
	rec.Subscribe(b)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	go func() { defer wg.Done(); det.Run(ctx) }()
	go func() { defer wg.Done(); p.Run(ctx, opts.Source.Events()) }()
	end, err := rec.Capture(ctx, out, copts)
	cancel()
	b.Close()
	wg.Wait()
	return end, err
}
