package latency

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"text/tabwriter"

	"github.com/observer-dev/observer/internal/sensor"
)

// Handler serves the Report as JSON (GET /latency); `observer seccomp-report`
// reads it, and prints Compare's rows with WriteReport.
func (l *Latency) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(l.Report()); err != nil {
			l.opts.Logger.Debug("write /latency", "err", err)
		}
	})
}

// Row is one line of the comparison: a container in one seccomp mode.
type Row struct {
	Container, Name, Mode string
	Filters               uint64
	Syscalls              uint64
	PerSecond             float64 // NaN when totals are shown
	P50, P99              float64 // seconds
	FilterPerCall         float64 // seconds per filtered syscall; NaN when not measured
	FilterShare           float64 // filter time / (filter + syscall time), NaN when not measured
}

// Comparison is what seccomp-report prints.
type Comparison struct {
	Seconds      float64 // 0: totals
	SampleEvery  uint32
	LatencyError string
	FilterError  string
	Rows         []Row
}

// Compare turns two reports (prev may be nil: totals) into rows.
func Compare(prev *Report, cur Report) Comparison {
	c := Comparison{SampleEvery: cur.SampleEvery, LatencyError: cur.LatencyError, FilterError: cur.FilterError}
	before := map[string]ContainerReport{}
	if prev != nil {
		c.Seconds = cur.Time.Sub(prev.Time).Seconds()
		for _, r := range prev.Containers {
			before[r.ID] = r
		}
	}
	for _, r := range cur.Containers {
		old := before[r.ID]
		var filter sensor.Log2Histogram
		var filters uint64
		measured := r.Filter != nil
		if measured {
			filter, filters = r.Filter.Hist, r.Filter.Filters
			if old.Filter != nil {
				filter = Sub(filter, old.Filter.Hist)
			}
		}
		for _, m := range r.Seccomp {
			h, n := m.Hist, m.Calls
			for _, om := range old.Seccomp {
				if om.Mode == m.Mode {
					h = Sub(h, om.Hist)
					n -= min(n, om.Calls)
				}
			}
			if prev != nil && n == 0 {
				continue // idle during the interval
			}
			row := Row{
				Container: r.ID, Name: r.Name, Mode: m.Mode, Filters: filters, Syscalls: n,
				PerSecond: math.NaN(), P50: Quantile(h, 0.5), P99: Quantile(h, 0.99),
				FilterPerCall: math.NaN(), FilterShare: math.NaN(),
			}
			if c.Seconds > 0 {
				row.PerSecond = float64(n) / c.Seconds
			}
			if m.Mode != "filter" {
				row.Filters = 0
				if measured || cur.FilterError == "" {
					row.FilterPerCall, row.FilterShare = 0, 0 // no filter runs for these tasks
				}
			} else if measured && filter.Count() > 0 {
				row.FilterPerCall = float64(filter.SumNs) / float64(filter.Count()) / 1e9
				row.FilterShare = float64(filter.SumNs) / float64(filter.SumNs+h.SumNs)
			}
			c.Rows = append(c.Rows, row)
		}
	}
	return c
}

// WriteReport prints the comparison as an aligned table.
func WriteReport(w io.Writer, c Comparison) {
	if c.Seconds > 0 {
		fmt.Fprintf(w, "syscalls over the last %.1fs", c.Seconds)
	} else {
		fmt.Fprint(w, "syscalls since each container's first syscall")
	}
	if c.SampleEvery > 1 {
		fmt.Fprintf(w, " (counts exact; latencies from 1 syscall in %d, timed at random)", c.SampleEvery)
	}
	fmt.Fprintln(w)
	if c.LatencyError != "" {
		fmt.Fprintf(w, "syscall latency not measured: %s\n", c.LatencyError)
	}
	if c.FilterError != "" {
		fmt.Fprintf(w, "seccomp filter time not measured (filter columns show -): %s\n", c.FilterError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CONTAINER\tNAME\tSECCOMP\tFILTERS\tSYSCALLS/S\tP50\tP99\tFILTER/SYSCALL\tFILTER SHARE\t")
	for _, r := range c.Rows {
		id := r.Container
		if id == "" {
			id = "host"
		} else if len(id) > 12 {
			id = id[:12]
		}
		rate := fmt.Sprint(r.Syscalls)
		if !math.IsNaN(r.PerSecond) {
			rate = fmt.Sprintf("%.0f", r.PerSecond)
		}
		filters := "-"
		if r.Mode == "filter" && r.Filters > 0 {
			filters = fmt.Sprint(r.Filters)
		}
		share := "-"
		if !math.IsNaN(r.FilterShare) {
			share = fmt.Sprintf("%.1f%%", 100*r.FilterShare)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", id, dash(r.Name), r.Mode, filters, rate,
			duration(r.P50), duration(r.P99), duration(r.FilterPerCall), share)
	}
	tw.Flush()
	if c.Seconds == 0 {
		fmt.Fprintln(w, "(SYSCALLS/S shows total syscalls when --interval is 0)")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// duration prints seconds the way people read latencies.
func duration(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case s == 0:
		return "0"
	case s < 1e-6:
		return fmt.Sprintf("%.0fns", s*1e9)
	case s < 1e-3:
		return fmt.Sprintf("%.1fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}
