package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// JSON writes the report as one indented JSON document.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func short(id string) string {
	if id == "" {
		return "host"
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// Text writes the report for a terminal.
func (r *Report) Text(w io.Writer) error {
	ew := &errWriter{w: w}
	h := r.Header
	ew.printf("Capture from %s (kernel %s, observer %s)\n", h.Host, h.Kernel, h.ObserverVersion)
	ew.printf("Reason:   %s\n", h.Reason)
	ew.printf("Taken:    %s UTC; covers %s to %s (%v)\n", ts(h.StartTime), ts(r.Start), ts(r.End), r.End.Sub(r.Start).Round(time.Millisecond))
	if !r.Complete {
		ew.printf("Status:   INCOMPLETE (no end record)\n")
	}
	if r.Error != "" {
		ew.printf("Error:    %s (report covers what came before)\n", r.Error)
	}
	for _, wn := range r.Warnings {
		ew.printf("Warning:  %s\n", wn)
	}
	ew.printf("\nSensors:\n")
	for _, s := range r.Sensors {
		if s.Active() {
			ew.printf("  %-10s %-10s received %d, lost %d\n", s.Name, s.Mode, s.EventsReceived, s.EventsLost)
		} else {
			ew.printf("  %-10s unavailable: %s\n", s.Name, s.Unavailable)
		}
	}
	ew.printf("\nEvents by type:\n")
	for _, t := range slices.Sorted(maps.Keys(r.Counts)) {
		ew.printf("  %-16s %d\n", t, r.Counts[t])
	}

	ew.printf("\nTimeline (%d items", len(r.Timeline))
	if r.TimelineOmitted > 0 {
		ew.printf(" of %d: the first of each kind and a sample of the rest; %d more omitted", r.TimelineTotal, r.TimelineOmitted)
	}
	ew.printf("):\n")
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	for _, it := range r.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ts(it.Time), it.Kind, short(it.ContainerID), it.Summary)
	}
	tw.Flush()

	if len(r.SlowestCopyUps) > 0 {
		ew.printf("\nSlowest copy-ups:\n")
		for _, it := range r.SlowestCopyUps {
			ew.printf("  %12v  %s  %s (pid %d)  %s\n", time.Duration(it.DurationNS), short(it.ContainerID), it.Comm, it.PID, it.Summary)
		}
	}
	ew.printf("\nContainers:\n")
	for _, c := range r.Containers {
		name := c.Name
		if c.Image != "" {
			name += " (" + c.Image + ")"
		}
		var counts []string
		for _, t := range slices.Sorted(maps.Keys(c.Counts)) {
			counts = append(counts, fmt.Sprintf("%s=%d", t, c.Counts[t]))
		}
		ew.printf("  %-12s %s\n    %s; %s to %s\n", short(c.ID), name, strings.Join(counts, " "), ts(c.First), ts(c.Last))
	}
	if r.ContainersOmitted > 0 {
		ew.printf("  (%d more events of containers past the first %d, not listed)\n", r.ContainersOmitted, MaxContainers)
	}
	if e := r.Captured; e != nil {
		ew.printf("\nCapture: %d events, %d snapshots, %d missed by the capture, %d missed by the recorder\n", e.Events, e.Snapshots, e.Dropped, e.RecorderDropped)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { fmt.Fprintf(e, format, a...) }
