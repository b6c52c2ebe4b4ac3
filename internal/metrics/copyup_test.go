package metrics

import (
	"math"
	"testing"

	"github.com/observer-dev/observer/internal/event"
)

func TestCopyUpMetrics(t *testing.T) {
	m := New(Sources{})
	evs := []*event.CopyUp{
		{Header: event.Header{ContainerID: id1}, DurationNS: 20_000, BytesCopied: 4096, Result: "ok"},
		{Header: event.Header{ContainerID: id1}, DurationNS: 1_500_000_000, BytesCopied: 64 << 20, Result: "ok"},
		{Header: event.Header{ContainerID: id1}, DurationNS: 3_000_000, BytesCopied: 1 << 20, Result: "ENOSPC"},
		{DurationNS: 7_000, Result: "ok"},
	}
	for _, e := range evs {
		m.Observe(e)
	}
	c := id1[:12]
	if got := sample(t, m, "observer_copy_up_bytes_total", "container", c); got != 4096+64<<20+1<<20 {
		t.Errorf("bytes = %v", got)
	}
	if got := sample(t, m, "observer_copy_ups_total", "container", c, "result", "ENOSPC"); got != 1 {
		t.Errorf("ENOSPC copy-ups = %v, want 1", got)
	}
	if got := sample(t, m, "observer_copy_ups_total", "container", c, "result", "ok"); got != 2 {
		t.Errorf("ok copy-ups = %v, want 2", got)
	}
	count, sum := histogramCountSum(t, m, "observer_copy_up_duration_seconds", c)
	if count != 3 || math.Abs(sum-(20e-6+1.5+3e-3)) > 1e-9 {
		t.Errorf("histogram count %d sum %v, want 3 and %v", count, sum, 20e-6+1.5+3e-3)
	}
	if count, _ := histogramCountSum(t, m, "observer_copy_up_duration_seconds", ""); count != 1 {
		t.Errorf("host histogram count %d, want 1", count)
	}

	m.ForgetContainer(id1)
	for name, n := range map[string]int{
		"duration": series(t, m, "observer_copy_up_duration_seconds"),
		"bytes":    series(t, m, "observer_copy_up_bytes_total"),
		"total":    series(t, m, "observer_copy_ups_total"),
	} {
		if n != 1 { // only the host's series is left
			t.Errorf("after forgetting the container, %s has %d series, want 1", name, n)
		}
	}
}

// histogramCountSum returns the sample count and sum of the histogram series
// with the given container label, as a scrape sees them.
func histogramCountSum(t testing.TB, m *Metrics, name, container string) (uint64, float64) {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "container" && l.GetValue() == container {
					h := s.GetHistogram()
					return h.GetSampleCount(), h.GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}
