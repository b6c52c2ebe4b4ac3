package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/server"
)

func init() {
	register("residue", "list leaked semaphores and veths, with their creators; --clean removes them", runResidue)
}

// runResidue: observer residue [--json] [--clean CLASS]. It asks the running
// daemon for its residue report, or scans by itself when no daemon answers,
// prints a table with the removal command for each object, and removes
// objects only when --clean says so.
func runResidue(args []string, stdout, stderr io.Writer) int {
	classes := residue.CleanClasses()
	fs := flag.NewFlagSet("observer residue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	daemonFlags := server.AddClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	clean := fs.String("clean", "", "remove residue of one `class`: "+orList(classes))
	olderThan := fs.Duration("older-than", time.Minute, "with --clean: only objects at least this old")
	grace := fs.Duration("grace", residue.DefaultGrace, "standalone scan: how old an array of unknown creator must be to count")
	settle := fs.Duration("settle", 2*time.Second, "standalone scan: a veth must stay orphaned this long between two scans")
	dockerHost := fs.String("docker-host", "", "standalone scan: Docker Engine API `address` (none disables)")
	if code, done := parseCommand(fs, args, "Usage: observer residue [flags]", stdout, stderr); done {
		return code
	}
	if *clean != "" && !slices.Contains(classes, *clean) {
		fmt.Fprintf(stderr, "observer residue: --clean %q: want %s\n", *clean, orList(classes))
		return exitUsage
	}
	if *olderThan < 0 || *grace < 0 || *settle < 0 {
		fmt.Fprintln(stderr, "observer residue: durations must not be negative")
		return exitUsage
	}
	client, err := daemonFlags.NewClient()
	if err != nil {
		fmt.Fprintf(stderr, "observer residue: %v\n", err)
		return exitUsage
	}

	ctx := context.Background()
	listen := client.Addr()
	var rep residue.Report
	source := "daemon at " + listen
	err = client.GetJSON(ctx, "/residue", &rep)
	if err != nil && !errors.Is(err, server.ErrNoDaemon) {
		// A daemon that refuses (403: not root, no credentials) must not be
		// replaced by a scan of our own: that would hide the refusal.
		fmt.Fprintf(stderr, "observer residue: %v\n", err)
		return exitError
	}
	if err != nil {
		var engine *container.EngineClient
		if *dockerHost != "none" {
			engine, _ = container.NewEngineClient(*dockerHost)
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rep = residue.Standalone(ctx, *grace, *settle, engine, log)
		source = "standalone scan (no daemon at " + listen + ")"
	}
	if rep.Offline {
		source = "replay of a capture, served at " + listen
		if *clean != "" {
			// Its objects are a capture's: removing "the same" ids here could hit
			// another machine's, or a later process's, arrays and links.
			fmt.Fprintf(stderr, "observer residue: --clean refused: %s lists a replayed capture's residue, not this machine's\n", listen)
			return exitError
		}
	}
	residue.SortItems(rep.Residue)
	if *asJSON {
		out, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "observer residue: encode the report: %v\n", err)
			return exitError
		}
		if _, err := stdout.Write(append(out, '\n')); err != nil {
			fmt.Fprintf(stderr, "observer residue: %v\n", err)
			return exitError
		}
	} else {
		residue.PrintReport(stdout, source, rep)
	}
	if *clean == "" {
		return exitOK
	}
	if err := residue.Clean(rep.Residue, *clean, *olderThan, stdout); err != nil {
		return exitError // each failure is a line of its own above
	}
	return exitOK
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
