// Command observer watches a container host's kernel with eBPF and reports, per
// container, what the Docker daemon's logs do not show. This file only wires the
// parts together; see internal/daemon for the running daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/daemon"
	"github.com/observer-dev/observer/internal/latency"
	"github.com/observer-dev/observer/internal/privilege"
	"github.com/observer-dev/observer/tracer"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// subcommands run against a running daemon or offline; each lives in the package
// that owns its subject. The daemon is the default when no subcommand is named.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) int{}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := subcommands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
	}
	return runDaemon(args, stderr)
}

func runDaemon(args []string, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "observer: %v\n", err)
		return code
	}
	cfg, err := config.Parse(args, config.Defaults{WatchComms: tracer.DefaultWatchComms}, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitUsage, err)
	}
	attach := map[string]tracer.Mode{}
	for sensor, name := range cfg.Attach {
		mode, err := tracer.ParseMode(name)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("-attach: %w", err))
		}
		attach[sensor] = mode
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	tr, err := tracer.New(tracer.Options{
		Sensors:         cfg.Sensors,
		Attach:          attach,
		WatchComms:      cfg.WatchComms,
		RingBufferBytes: cfg.RingBufferBytes,
		Latency: tracer.LatencyOptions{
			SampleEvery:    uint32(cfg.SyscallSampleEvery),
			ContainersOnly: cfg.SyscallContainersOnly,
			PerSyscall:     cfg.SyscallBreakdown,
		},
		Logger: log,
	})
	if err != nil {
		return fail(exitUsage, err)
	}
	resolver, err := container.NewResolver(container.Options{DockerHost: cfg.DockerHost, Logger: log})
	if err != nil {
		return fail(exitUsage, err)
	}
	if err := privilege.Check(); err != nil {
		return fail(exitError, err)
	}

	// SIGUSR1 asks for a capture; until the recorder listens (or when it is off),
	// it must not kill the daemon with its default action. SIGPIPE (stdout or
	// stderr read by something that went away, e.g. journald restarting) must
	// not either: the write fails and is reported instead.
	signal.Ignore(syscall.SIGUSR1, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The tracer starts first so that cgroups created during the resolver's walk
	// still reach the index through the cgroup sensor.
	if err := tr.Start(ctx); err != nil {
		return fail(exitError, err)
	}
	defer tr.Close()
	if err := resolver.Start(ctx); err != nil {
		return fail(exitError, err)
	}
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, Source: tr, Resolver: resolver, Version: buildinfo.Get().Short(), Logger: log,
		Latency: latencySource(cfg.Sensors, tr), LatencyTopN: cfg.SyscallTop, SyscallLabel: cfg.SyscallLabel,
		ContainersOnly: cfg.SyscallContainersOnly,
	})
	if err != nil {
		return fail(exitError, err)
	}
	log.Info("stopped")
	return exitOK
}

// latencySource is the tracer when the latency or seccomp sensor was asked for.
func latencySource(sensors []string, tr *tracer.Tracer) latency.Source {
	if len(sensors) == 0 || slices.Contains(sensors, tracer.SensorLatency) || slices.Contains(sensors, tracer.SensorSeccomp) {
		return tr
	}
	return nil
}
