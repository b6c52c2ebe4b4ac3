package main

import (
	"context"
	"log/slog"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/tracer"
)

// kernelSide is what watches this machine: the tracer and container
// correlation, built and started the same way by the daemon and by a
// standalone capture.
type kernelSide struct {
	tracer   *tracer.Tracer
	resolver *container.Resolver
}

// newKernelSide builds both from options; an error is a bad option (exit 2).
func newKernelSide(opts tracer.Options, dockerHost string, log *slog.Logger) (*kernelSide, error) {
	opts.Logger = log
	tr, err := tracer.New(opts)
	if err != nil {
		return nil, err
	}
	resolver, err := container.NewResolver(container.Options{DockerHost: dockerHost, Logger: log})
	if err != nil {
		return nil, err
	}
	return &kernelSide{tracer: tr, resolver: resolver}, nil
}

// start starts the tracer first, so that cgroups created during the
// resolver's walk still reach the index through the cgroup sensor. Once it
// returns, close must be called, whatever the error.
func (k *kernelSide) start(ctx context.Context) error {
	if err := k.tracer.Start(ctx); err != nil {
		return err
	}
	return k.resolver.Start(ctx)
}

func (k *kernelSide) close() { k.tracer.Close() }
