package metrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

const id1 = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef"

func TestEventCounters(t *testing.T) {
	m := New(Sources{})
	m.Observe(&event.RenameExdev{Header: event.Header{ContainerID: id1}})
	m.Observe(&event.RenameExdev{Header: event.Header{ContainerID: id1}})
	m.Observe(&event.RenameExdev{})
	m.Observe(&event.Signal{Signal: "SIGPIPE", TargetComm: "dockerd", Disposition: "default"})
	m.Observe(&event.DaemonExit{Header: event.Header{Comm: "dockerd"}, Signal: "SIGPIPE"})
	m.Observe(&event.DaemonExit{Header: event.Header{Comm: "dockerd"}})

	checks := []struct {
		got  float64
		want float64
		what string
	}{
		{sample(t, m, "observer_rename_exdev_total", "container", id1[:12]), 2, "rename in container"},
		{sample(t, m, "observer_rename_exdev_total", "container", ""), 1, "rename on host"},
		{sample(t, m, "observer_daemon_signals_total", "target", "dockerd", "signal", "SIGPIPE", "disposition", "default"), 1, "signal"},
		{sample(t, m, "observer_daemon_exits_total", "target", "dockerd", "signal", "SIGPIPE"), 1, "exit by signal"},
		{sample(t, m, "observer_daemon_exits_total", "target", "dockerd", "signal", "none"), 1, "normal exit"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestContainerLabelIsBoundedAndForgotten(t *testing.T) {
	m := New(Sources{})
	m.maxContainers = 2
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, id := range []string{a, b, c} {
		m.Observe(&event.RenameExdev{Header: event.Header{ContainerID: id}})
	}
	if got := sample(t, m, "observer_rename_exdev_total", "container", OverflowContainer); got != 1 {
		t.Errorf("third container should land in %q, got %v", OverflowContainer, got)
	}
	m.ForgetContainer(a)
	if n := series(t, m, "observer_rename_exdev_total"); n != 2 {
		t.Errorf("after forgetting a: %d series, want 2 (b and other)", n)
	}
	m.Observe(&event.RenameExdev{Header: event.Header{ContainerID: c}})
	if got := sample(t, m, "observer_rename_exdev_total", "container", c[:12]); got != 1 {
		t.Errorf("c gets its own label once there is room, got %v", got)
	}
}

func TestStatusCollector(t *testing.T) {
	m := New(Sources{
		Sensors: func() []sensor.Status {
			return []sensor.Status{
				{Name: "rename", Mode: "tracepoint", EventsLost: 3, EventsReceived: 7},
				{Name: "copyup", Unavailable: "fentry: refused"},
			}
		},
		BusDropped: func() map[string]uint64 { return map[string]uint64{"http": 4} },
	})
	want := `
# HELP observer_events_lost_total Events the kernel could not put in a sensor's ring buffer.
# TYPE observer_events_lost_total counter
observer_events_lost_total{sensor="rename"} 3
# HELP observer_sensor_info 1 for each sensor's attach mode; mode="unavailable" with the reason when it could not attach; variant: how it adapted to the kernel (per-thread state, types read), empty for sensors with one form.
# TYPE observer_sensor_info gauge
observer_sensor_info{mode="tracepoint",reason="",sensor="rename",variant=""} 1
observer_sensor_info{mode="unavailable",reason="fentry: refused",sensor="copyup",variant=""} 1
# HELP observer_subscriber_dropped_events_total Events a slow consumer (HTTP stream, event file, recorder) missed because its queue was full.
# TYPE observer_subscriber_dropped_events_total counter
observer_subscriber_dropped_events_total{subscriber="http"} 4
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"observer_events_lost_total", "observer_sensor_info", "observer_subscriber_dropped_events_total"); err != nil {
		t.Error(err)
	}
}

func TestBuildInfo(t *testing.T) {
	m := New(Sources{})
	b := buildinfo.Get()
	want := fmt.Sprintf(`observer_build_info{goversion=%q,revision=%q,version=%q} 1`, b.GoVersion, b.Revision, b.Version)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// sample is the value of the counter series name{labels...} (name, value
// pairs) as a scrape sees it; 0 when there is no such series.
func sample(t testing.TB, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

// series counts the series of the metric name, as a scrape sees them.
func series(t testing.TB, m *Metrics, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), name)
	if err != nil {
		t.Fatalf("gather %s: %v", name, err)
	}
	return n
}
