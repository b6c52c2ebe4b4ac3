package latency

import (
	"context"
	"log/slog"
	"testing"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/testenv/tracertest"
	"github.com/observer-dev/observer/tracer"
)

// startLatency starts the real tracer with opts and a resolver asking
// dockerHost ("none": no Docker), both stopped when the test ends, and
// returns the Latency over them.
func startLatency(t *testing.T, dockerHost string, opts tracer.Options) (*Latency, *tracer.Tracer) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Logger = log
	tr := tracertest.Start(t, opts)
	res, err := container.NewResolver(container.Options{DockerHost: dockerHost, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return New(Options{Source: tr, Resolver: res, Logger: log}), tr
}
