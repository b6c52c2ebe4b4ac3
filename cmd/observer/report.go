package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/report"
)

func init() {
	register("report", "incident timeline and per-container summary of a capture (text, json, html)", runReport)
}

// runReport: observer report [--format text|json|html] [--out FILE] CAPTURE
func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("observer report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	format := fs.String("format", "text", "`format`: text, json or html")
	out := fs.String("out", "", "write to `FILE` instead of stdout")
	file, extra, err := parseWithFile(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage: observer report [--format text|json|html] [--out FILE] CAPTURE")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return exitOK
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "observer report: %v\n", err)
		return exitUsage
	case file == "" || len(extra) > 0:
		fmt.Fprintln(stderr, "observer report: want exactly one capture file")
		return exitUsage
	case *format != "text" && *format != "json" && *format != "html":
		fmt.Fprintf(stderr, "observer report: -format %q: want text, json or html\n", *format)
		return exitUsage
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "observer report: %v\n", err)
		return exitError
	}
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil {
		fmt.Fprintf(stderr, "observer report: %s: %v\n", file, err)
		return exitError
	}
	rep := report.Build(cr)
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "observer report: warning: %s\n", w)
	}
	w := stdout
	if *out != "" {
		// 0600 like the capture it comes from; never over an existing file (the
		// capture itself, say).
		of, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("%s exists; choose another -out name", *out)
		}
		if err != nil {
			fmt.Fprintf(stderr, "observer report: %v\n", err)
			return exitError
		}
		defer of.Close()
		w = of
	}
	switch *format {
	case "json":
		err = rep.JSON(w)
	case "html":
		err = rep.HTML(w)
	default:
		err = rep.Text(w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "observer report: %v\n", err)
		return exitError
	}
	if rep.Error != "" {
		fmt.Fprintf(stderr, "observer report: %s: %s (reported what came before)\n", file, rep.Error)
		return exitError
	}
	return exitOK
}
