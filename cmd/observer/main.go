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
	"syscall"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/config"
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

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := subcommands[args[0]]; ok {
			return cmd.run(args[1:], stdout, stderr)
		}
	}
	return runDaemon(args, stdout, stderr)
}

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "observer: %v\n", err)
		return code
	}
	cfg, err := config.Parse(args, config.Defaults{WatchComms: tracer.DefaultWatchComms, Usage: usage}, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitUsage, err)
	}
	if cfg.ShowVersion {
		fmt.Fprintln(stdout, buildinfo.Get())
		return exitOK
	}
	attach := map[string]tracer.Mode{}
	for sensor, name := range cfg.Attach {
		mode, err := tracer.ParseMode(name)
		if err != nil {
			return fail(exitUsage, fmt.Errorf("-attach: %w", err))
		}
		attach[sensor] = mode
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	ks, err := newKernelSide(tracer.Options{
		Sensors:         cfg.Sensors,
		Attach:          attach,
		WatchComms:      cfg.WatchComms,
		RingBufferBytes: cfg.RingBufferBytes,
		Latency: tracer.LatencyOptions{
			SampleEvery:    uint32(cfg.SyscallSampleEvery),
			ContainersOnly: cfg.SyscallContainersOnly,
			PerSyscall:     cfg.SyscallBreakdown,
		},
	}, cfg.DockerHost, log)
	if err != nil {
		return fail(exitUsage, err)
	}
	if err := privilege.Check(); err != nil {
		return fail(exitError, err)
	}

	// SIGUSR1 asks for a capture and SIGHUP reopens the event file; until the
	// daemon listens for them (or when they have nothing to do), their default
	// action must not kill it. SIGPIPE (stdout or stderr read by something that
	// went away, e.g. journald restarting) must not either: the write fails and
	// is reported instead.
	signal.Ignore(syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	info := buildinfo.Get()
	log.Info("starting", "version", info.Version, "revision", info.Revision, "go", info.GoVersion)
	err = ks.start(ctx)
	defer ks.close()
	if err != nil {
		return fail(exitError, err)
	}
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, Source: ks.tracer, Resolver: ks.resolver, Version: info.Short(), Logger: log,
		Latency: latencySource(ks.tracer), LatencyTopN: cfg.SyscallTop, SyscallLabel: cfg.SyscallLabel,
		ContainersOnly: cfg.SyscallContainersOnly,
	})
	if err != nil {
		return fail(exitError, err)
	}
	log.Info("stopped")
	return exitOK
}

// newLogger is the daemon's log: slog's text or JSON handler on stderr.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// latencySource is the tracer when it runs the latency or seccomp sensor,
// however --sensors named them (a list, exclusions, or nothing).
func latencySource(tr *tracer.Tracer) latency.Source {
	if tr.Runs(tracer.SensorLatency) || tr.Runs(tracer.SensorSeccomp) {
		return tr
	}
	return nil
}
