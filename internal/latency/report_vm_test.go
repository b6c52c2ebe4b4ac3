package latency

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer"
)

// TestSeccompReportFromContainers: two runc containers do the same 20000
// one-byte read/write pairs, one under a seccomp profile, with the latency and
// seccomp sensors at the daemon's defaults. The seccomp-report rows show the
// filtered container in mode filter, with its filter time per syscall and
// share where the seccomp sensor runs (the QEMU kernels: make vmtest), and say
// the filter time is not measured where it cannot attach (this host).
func TestSeccompReportFromContainers(t *testing.T) {
	testenv.RequireRoot(t)
	lat, _ := startLatency(t, "none", tracer.Options{Sensors: []string{tracer.SensorLatency, tracer.SensorSeccomp},
		Latency: tracer.LatencyOptions{SampleEvery: sensor.DefaultSyscallSampleEvery}})
	ctx := t.Context()

	// The containers stay up until the report has seen them: the resolver
	// learns their cgroups (by handle) while they exist.
	const pairs = 20000
	script := "dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null; sleep 60"
	start := func(seccomp bool) string {
		c := testenv.NewContainer(t, testenv.ContainerOptions{Seccomp: seccomp})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Run(runCtx, script)
		}()
		t.Cleanup(func() { stop(); <-done })
		return c.ID
	}
	filtered, plain := start(true), start(false)
	calls := func(rep Report, id, mode string) uint64 {
		for _, c := range rep.Containers {
			if c.ID == id {
				for _, m := range c.Seccomp {
					if m.Mode == mode {
						return m.Calls
					}
				}
			}
		}
		return 0
	}
	var rep Report
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rep = lat.Report()
		if calls(rep, filtered, "filter") >= 2*pairs && calls(rep, plain, "none") >= 2*pairs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers not counted in time: filtered %d, plain %d", calls(rep, filtered, "filter"), calls(rep, plain, "none"))
		}
	}
	var out strings.Builder
	cmp := Compare(nil, rep)
	WriteReport(&out, cmp)
	t.Logf("seccomp-report:\n%s", out.String())

	row := func(id, mode string) Row {
		for _, r := range cmp.Rows {
			if r.Container == id && r.Mode == mode {
				return r
			}
		}
		t.Fatalf("no row for %s in mode %s", id[:12], mode)
		return Row{}
	}
	f, p := row(filtered, "filter"), row(plain, "none")
	if n := calls(rep, plain, "filter"); n != 0 {
		t.Errorf("unconfined container: %d syscalls under a filter", n)
	}
	if f.P50 <= 0 || p.P50 <= 0 {
		t.Errorf("p50 filtered %g, plain %g: want measured", f.P50, p.P50)
	}
	if rep.FilterError != "" {
		if !math.IsNaN(f.FilterPerCall) || !strings.Contains(out.String(), "seccomp filter time not measured") {
			t.Errorf("seccomp sensor not running (%s), yet the report shows filter time %g", rep.FilterError, f.FilterPerCall)
		}
		return
	}
	if f.Filters < 1 || !(f.FilterPerCall > 0) || !(f.FilterShare > 0 && f.FilterShare < 1) {
		t.Errorf("filtered row: %d filters, %g s per syscall, share %g: want measured", f.Filters, f.FilterPerCall, f.FilterShare)
	}
	if p.FilterPerCall != 0 || p.FilterShare != 0 {
		t.Errorf("unconfined row: filter %g s per syscall, share %g: want 0", p.FilterPerCall, p.FilterShare)
	}
	testenv.Result(t, map[string]any{"test": "seccomp_report", "filter_ns_per_syscall": int(f.FilterPerCall * 1e9),
		"filter_share_pct": math.Round(1000*f.FilterShare) / 10, "p50_filtered_ns": int(f.P50 * 1e9), "p50_plain_ns": int(p.P50 * 1e9)})
}
