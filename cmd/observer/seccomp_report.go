package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/observer-dev/observer/internal/latency"
	"github.com/observer-dev/observer/internal/server"
)

func init() {
	register("seccomp-report", "what seccomp costs each container: syscall time by seccomp mode, filter share", runSeccompReport)
}

// runSeccompReport: observer seccomp-report [--interval D]. It reads /latency
// from the running daemon twice, an interval apart, and prints per container
// what seccomp costs.
func runSeccompReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seccomp-report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	daemonFlags := server.AddClientFlags(fs)
	interval := fs.Duration("interval", 2*time.Second, "measure rates and percentiles over this `duration`; 0 shows totals since each container's first syscall")
	if code, done := parseCommand(fs, args, "Usage: observer seccomp-report [--listen unix:PATH|HOST:PORT|https://HOST:PORT] [--interval DURATION]", stdout, stderr); done {
		return code
	}
	client, err := daemonFlags.NewClient()
	if err != nil {
		fmt.Fprintf(stderr, "observer seccomp-report: %v\n", err)
		return exitUsage
	}
	if *interval < 0 {
		fmt.Fprintf(stderr, "observer seccomp-report: -interval %v: must not be negative\n", *interval)
		return exitUsage
	}
	ctx := context.Background()
	var first latency.Report
	if err := client.GetJSON(ctx, "/latency", &first); err != nil {
		fmt.Fprintf(stderr, "observer seccomp-report: %v\n", err)
		return exitError
	}
	var prev *latency.Report
	last := first
	if *interval > 0 {
		time.Sleep(*interval)
		last = latency.Report{}
		if err := client.GetJSON(ctx, "/latency", &last); err != nil {
			fmt.Fprintf(stderr, "observer seccomp-report: %v\n", err)
			return exitError
		}
		prev = &first
	}
	latency.WriteReport(stdout, latency.Compare(prev, last))
	return exitOK
}
