package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/observer-dev/observer/internal/buildinfo"
)

// command is a subcommand: it runs against a running daemon or offline. The
// daemon itself is what runs when no subcommand is named.
type command struct {
	summary string // one line for `observer help`
	run     func(args []string, stdout, stderr io.Writer) int
}

// subcommands are registered by each command's file (its init), so adding one
// touches only that file.
var subcommands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	subcommands[name] = command{summary: summary, run: run}
}

func init() {
	register("help", "show this help, or a command's flags: observer help COMMAND", runHelp)
	register("version", "print the version, revision and Go version", func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, buildinfo.Get())
		return exitOK
	})
}

// usage heads the daemon's --help: how to call it, then every subcommand.
func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  observer [flags]           run the daemon (flags below)")
	fmt.Fprintln(w, "  observer COMMAND [flags]   run a command (observer help COMMAND for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	width := 0
	for name := range subcommands {
		width = max(width, len(name))
	}
	for _, name := range slices.Sorted(maps.Keys(subcommands)) {
		fmt.Fprintf(w, "  %-*s  %s\n", width, name, subcommands[name].summary)
	}
	fmt.Fprintln(w, "\nDaemon flags:")
}

// runHelp: observer help [COMMAND].
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		return runDaemon([]string{"--help"}, stdout, stderr)
	case len(args) > 1:
		fmt.Fprintln(stderr, "observer help: want at most one command")
		return exitUsage
	case args[0] == "help":
		usage(stdout)
		return exitOK
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "observer help: unknown command %q (known: %s)\n", args[0], strings.Join(slices.Sorted(maps.Keys(subcommands)), ", "))
		return exitUsage
	}
	return cmd.run([]string{"--help"}, stdout, stderr)
}
