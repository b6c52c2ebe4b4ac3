package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/daemon"
	"github.com/observer-dev/observer/internal/replay"
)

func init() {
	register("replay", "serve /metrics, /events and /status from a capture, as the daemon did", runReplay)
}

// runReplay: observer replay [--listen ADDR] [--speed F] [--exit] CAPTURE. It serves
// /metrics, /events and /status from the replayed capture, with no privileges.
func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("observer replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", config.DefaultListen, "HTTP `address` for /metrics, /events, /status")
	exit := fs.Bool("exit", false, "exit once the capture is replayed instead of serving until interrupted")
	speed := fs.Float64("speed", 0, "replay at this `factor` of the recorded pace (1: real time, 10: ten times faster); 0: as fast as possible")
	level := fs.String("log-level", "info", "log `level`")
	file, extra, err := parseWithFile(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: observer replay [--listen ADDR] [--speed F] [--exit] CAPTURE")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return exitOK
	}
	var lvl slog.Level
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "observer replay: %v\n", err)
		return exitUsage
	case file == "" || len(extra) > 0:
		fmt.Fprintln(stderr, "observer replay: want exactly one capture file")
		return exitUsage
	case config.CheckListen(*listen) != nil:
		fmt.Fprintf(stderr, "observer replay: -listen %q: %v\n", *listen, config.CheckListen(*listen))
		return exitUsage
	case lvl.UnmarshalText([]byte(*level)) != nil:
		fmt.Fprintf(stderr, "observer replay: -log-level %q: want debug, info, warn or error\n", *level)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if err := replay.CheckSpeed(*speed); err != nil {
		fmt.Fprintf(stderr, "observer replay: -%v\n", err)
		return exitUsage
	}
	rp, err := replay.Open(file, replay.Options{ExitWhenDone: *exit, Speed: *speed})
	if err != nil {
		fmt.Fprintf(stderr, "observer replay: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rp.Start(ctx)
	// The replay's last words (warnings, errors) are logged once it is done,
	// and always before the process exits: the exit code follows them.
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		<-rp.Done()
		info := rp.Info()
		for _, w := range info.Warnings {
			log.Warn("capture", "warning", w)
		}
		if info.Error != "" {
			log.Error("replay stopped early", "err", info.Error)
		}
		if info.Stopped {
			log.Info("replay stopped", "file", file, "events", info.Events)
			return
		}
		log.Info("replay done", "file", file, "events", info.Events, "complete", info.Complete)
	}()
	h := rp.Info().Header
	log.Info("replaying", "file", file, "host", h.Host, "kernel", h.Kernel, "taken", h.StartTime, "reason", h.Reason)
	err = daemon.Run(ctx, daemon.Options{
		Config:     &config.Config{Listen: *listen},
		Source:     rp,
		Resolver:   rp,
		Version:    buildinfo.Get().Short(),
		Logger:     log,
		SourceInfo: func() any { return rp.Info() },
		Offline:    rp,
	})
	// The daemon ended (the capture is replayed with --exit, an interrupt, or
	// an error): stop the replay if it still runs and wait for its messages.
	stop()
	<-logged
	if err != nil {
		fmt.Fprintf(stderr, "observer replay: %v\n", err)
		return exitError
	}
	if rp.Info().Error != "" {
		return exitError
	}
	return exitOK
}
