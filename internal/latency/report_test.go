package latency

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/sensor"
)

func hist(bucket int, n, sumNs uint64) sensor.Log2Histogram {
	var h sensor.Log2Histogram
	h.Buckets[bucket] = n
	h.SumNs = sumNs
	return h
}

func TestCompareRatesAndShares(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := Report{Time: t0, SampleEvery: 1, Containers: []ContainerReport{
		{ID: "a", Seccomp: []ModeLatency{{Mode: "filter", Calls: 1000, Hist: hist(8, 1000, 300_000)}},
			Filter: &FilterTime{Filters: 1, Hist: hist(6, 1000, 100_000)}},
		// Sampled: the histogram's scaled count is an estimate; rates come from Calls.
		{ID: "b", Seccomp: []ModeLatency{{Mode: "none", Calls: 1000, Hist: hist(8, 960, 300_000)}}},
		{ID: "idle", Seccomp: []ModeLatency{{Mode: "none", Calls: 7, Hist: hist(8, 16, 500)}}},
	}}
	cur := Report{Time: t0.Add(2 * time.Second), SampleEvery: 1, Containers: []ContainerReport{
		{ID: "a", Name: "web", Seccomp: []ModeLatency{{Mode: "filter", Calls: 3000, Hist: hist(8, 3000, 900_000)}},
			Filter: &FilterTime{Filters: 1, Hist: hist(6, 3000, 300_000)}},
		{ID: "b", Seccomp: []ModeLatency{{Mode: "none", Calls: 3000, Hist: hist(8, 3040, 900_000)}}},
		{ID: "idle", Seccomp: []ModeLatency{{Mode: "none", Calls: 7, Hist: hist(8, 16, 500)}}},
	}}
	c := Compare(&prev, cur)
	if len(c.Rows) != 2 {
		t.Fatalf("rows = %+v, want a and b (idle has no syscalls in the interval)", c.Rows)
	}
	a, b := c.Rows[0], c.Rows[1]
	if a.PerSecond != 1000 || b.PerSecond != 1000 {
		t.Errorf("rates %g %g, want 1000/s", a.PerSecond, b.PerSecond)
	}
	// 2000 filter runs took 200 µs: 100 ns each; syscalls took 600 µs: share 0.25.
	if math.Abs(a.FilterPerCall-100e-9) > 1e-12 || math.Abs(a.FilterShare-0.25) > 1e-9 {
		t.Errorf("filter per call %g share %g, want 100ns and 25%%", a.FilterPerCall, a.FilterShare)
	}
	if b.FilterPerCall != 0 || b.FilterShare != 0 {
		t.Errorf("unconfined container: filter %g share %g, want 0", b.FilterPerCall, b.FilterShare)
	}
	var out bytes.Buffer
	WriteReport(&out, c)
	for _, want := range []string{"web", "filter", "1000", "100ns", "25.0%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCompareFilterNotMeasured(t *testing.T) {
	cur := Report{SampleEvery: 1, FilterError: "seccomp sensor unavailable: no kprobes", Containers: []ContainerReport{
		{ID: "a", Seccomp: []ModeLatency{{Mode: "filter", Calls: 10, Hist: hist(8, 10, 3000)}}},
	}}
	c := Compare(nil, cur)
	if len(c.Rows) != 1 || !math.IsNaN(c.Rows[0].FilterShare) || !math.IsNaN(c.Rows[0].PerSecond) {
		t.Fatalf("rows = %+v, want unknown filter share and no rate", c.Rows)
	}
	var out bytes.Buffer
	WriteReport(&out, c)
	if !strings.Contains(out.String(), "no kprobes") {
		t.Errorf("report does not say why filter time is missing:\n%s", out.String())
	}
}
