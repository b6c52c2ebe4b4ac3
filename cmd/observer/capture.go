package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/daemon"
	"github.com/observer-dev/observer/internal/incident"
	"github.com/observer-dev/observer/internal/privilege"
	"github.com/observer-dev/observer/internal/recorder"
	"github.com/observer-dev/observer/internal/server"
	"github.com/observer-dev/observer/tracer"
)

func init() {
	register("capture", "record a capture of the daemon's recent past and the next --duration (or standalone)", runCapture)
}

// runCapture: observer capture [--duration 30s] --out FILE. It asks the running
// daemon (its recorder's past included) and, when none answers, traces
// in-process for the duration.
func runCapture(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("observer capture", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d := fs.Duration("duration", 30*time.Second, "capture what happens during this `duration` (plus the daemon's recorded past)")
	out := fs.String("out", "", "write the capture to `FILE` (- for stdout)")
	daemonFlags := server.AddClientFlags(fs)
	reason := fs.String("reason", "", "a note stored in the capture's header")
	standalone := fs.Bool("standalone", false, "do not ask a running daemon; trace in-process (root)")
	watch := fs.String("watch-comm", strings.Join(tracer.DefaultWatchComms, ","), "standalone: daemons whose fatal signals and exits are reported")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: observer capture [--duration 30s] --out FILE [--listen unix:PATH|HOST:PORT|https://HOST:PORT] [--standalone]")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return exitOK
	} else if err != nil {
		fmt.Fprintf(stderr, "observer capture: %v\n", err)
		return exitUsage
	}
	switch {
	case *out == "":
		fmt.Fprintln(stderr, "observer capture: -out FILE is required")
		return exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "observer capture: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *d < 0 || *d > incident.MaxDuration:
		fmt.Fprintf(stderr, "observer capture: -duration %v: want 0s to %v\n", *d, incident.MaxDuration)
		return exitUsage
	}
	client, err := daemonFlags.NewClient()
	if err != nil {
		fmt.Fprintf(stderr, "observer capture: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	w, closeOut, err := openOut(*out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "observer capture: %v\n", err)
		return exitError
	}
	err = server.ErrNoDaemon
	if !*standalone {
		err = fromDaemon(ctx, client, *d, *reason, w)
		if errors.Is(err, server.ErrNoDaemon) {
			fmt.Fprintf(stderr, "observer capture: no daemon at %s; tracing in-process for %v\n", client.Addr(), *d)
		}
	}
	if errors.Is(err, server.ErrNoDaemon) {
		err = standaloneCapture(ctx, *d, *reason, *watch, w, stderr)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "observer capture: %v\n", err)
		if *out != "-" && fileIsEmpty(*out) {
			os.Remove(*out) // ours, created above and never written: leave no empty file behind
		}
		return exitError
	}
	if *out != "-" {
		fmt.Fprintln(stdout, describe(*out))
	}
	return exitOK
}

func openOut(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "-" {
		return stdout, func() error { return nil }, nil
	}
	// Never overwrite: the file may be an earlier capture someone still needs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("%s exists; choose another -out name", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// fromDaemon streams a capture from POST /capture?stream=1.
func fromDaemon(ctx context.Context, client *server.Client, d time.Duration, reason string, w io.Writer) error {
	q := url.Values{"duration": {d.String()}, "stream": {"1"}}
	if reason != "" {
		q.Set("reason", reason)
	}
	resp, err := client.Do(ctx, http.MethodPost, "/capture?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return fmt.Errorf("the daemon at %s takes no captures (started with --recorder=false?)", client.Addr())
	}
	if resp.StatusCode != http.StatusOK {
		return server.ResponseError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receive capture: %w", err)
	}
	return nil
}

// standaloneCapture starts the tracer and container correlation in-process,
// as the daemon does (newKernelSide), and records a capture with them.
func standaloneCapture(ctx context.Context, d time.Duration, reason, watch string, w io.Writer, stderr io.Writer) error {
	if err := privilege.Check(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var comms []string
	for _, c := range strings.Split(watch, ",") {
		if c = strings.TrimSpace(c); c != "" {
			comms = append(comms, c)
		}
	}
	ks, err := newKernelSide(tracer.Options{WatchComms: comms}, "", log)
	if err != nil {
		return err
	}
	err = ks.start(ctx)
	defer ks.close()
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "manual (standalone)"
	}
	cfg := &config.Config{ResidueGrace: config.DefaultResidueGrace, ResidueInterval: config.DefaultResidueInterval}
	_, err = daemon.Capture(ctx, daemon.Options{Config: cfg, Source: ks.tracer, Resolver: ks.resolver, Version: buildinfo.Get().Short(), Logger: log},
		w, recorder.CaptureOptions{Duration: d, Reason: reason})
	return err
}

// describe reads the capture back: one line saying what it holds.
func describe(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	events := 0
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Sprintf("%s: %d events, then: %v", path, events, err)
		}
		if rec.Kind == capture.KindEvent {
			events++
		}
	}
	state := "complete"
	if !cr.Complete() {
		state = "INCOMPLETE: " + strings.Join(cr.Warnings(), "; ")
	}
	return fmt.Sprintf("%s: %d events (%s)", path, events, state)
}

func fileIsEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() == 0
}
