// Package metrics turns events and sensor status into Prometheus metrics. Event
// counters are updated in the pipeline; sensor and loss figures are read on scrape.
package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/observer-dev/observer/internal/buildinfo"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// DefaultMaxContainers bounds the container label: past it, new containers are
// counted under container="other" until old ones are forgotten.
const DefaultMaxContainers = 1024

// OverflowContainer is the label value used once the container label is full.
const OverflowContainer = "other"

// Sources are read on every scrape.
type Sources struct {
	Sensors    func() []sensor.Status
	BusDropped func() map[string]uint64
}

// Metrics owns the registry.
type Metrics struct {
	reg *prometheus.Registry

	mu            sync.Mutex
	containers    map[string]struct{} // short ids with live label values
	maxContainers int
	// perContainer lists the vectors with a container label, to forget them together.
	perContainer []*prometheus.MetricVec

	renameExdev   *prometheus.CounterVec
	daemonSignals *prometheus.CounterVec
	daemonExits   *prometheus.CounterVec
	copyUp        *copyUpMetrics
}

// New registers the observer's metrics, plus the Go and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg:           prometheus.NewRegistry(),
		containers:    map[string]struct{}{},
		maxContainers: DefaultMaxContainers,
		renameExdev: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_rename_exdev_total",
			Help: "rename(2)/renameat(2)/renameat2(2) calls that failed with EXDEV, e.g. directory renames on overlayfs.",
		}, []string{"container"}),
		daemonSignals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_daemon_signals_total",
			Help: "Signals whose default action kills, generated for a watched daemon.",
		}, []string{"target", "signal", "disposition"}),
		daemonExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_daemon_exits_total",
			Help: "Exits of watched daemons, by terminating signal (none for a normal exit).",
		}, []string{"target", "signal"}),
	}
	m.perContainer = []*prometheus.MetricVec{m.renameExdev.MetricVec}
	m.copyUp = newCopyUpMetrics(m)
	m.reg.MustRegister(
		m.renameExdev, m.daemonSignals, m.daemonExits,
		&statusCollector{src: src},
		buildInfo(buildinfo.Get()),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// buildInfo is observer_build_info, the exporter convention: constant 1,
// the build's identity in labels, so dashboards can join on version.
func buildInfo(b buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "observer_build_info",
		Help:        "A metric with a constant '1' value labeled by the observer's version, revision and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// Registry lets other parts of the daemon register their own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe counts one event. It runs on the pipeline's goroutine: keep it cheap.
func (m *Metrics) Observe(ev event.Event) {
	switch e := ev.(type) {
	case *event.RenameExdev:
		m.renameExdev.WithLabelValues(m.ContainerLabel(e.ContainerID)).Inc()
	case *event.Signal:
		m.daemonSignals.WithLabelValues(e.TargetComm, e.Signal, e.Disposition).Inc()
	case *event.DaemonExit:
		sig := e.Signal
		if sig == "" {
			sig = "none"
		}
		m.daemonExits.WithLabelValues(e.Comm, sig).Inc()
	case *event.CopyUp:
		m.copyUp.observe(m, e)
	}
}

// ContainerLabel returns the label value for a container id: its 12-char short
// id, "" for the host, or OverflowContainer once the label set is full.
func (m *Metrics) ContainerLabel(id string) string {
	if id == "" {
		return ""
	}
	short := id
	if len(short) > 12 {
		short = short[:12]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.containers[short]; ok {
		return short
	}
	if len(m.containers) >= m.maxContainers {
		return OverflowContainer
	}
	m.containers[short] = struct{}{}
	return short
}

// ForgetContainer drops every series of a container that is gone, so the label
// set does not grow without bound.
func (m *Metrics) ForgetContainer(id string) {
	short := id
	if len(short) > 12 {
		short = short[:12]
	}
	m.mu.Lock()
	_, known := m.containers[short]
	delete(m.containers, short)
	m.mu.Unlock()
	if !known {
		return
	}
	for _, v := range m.perContainer {
		v.DeletePartialMatch(prometheus.Labels{"container": short})
	}
}

// AddContainerVec registers a vector with a "container" label so that
// ForgetContainer also cleans it.
func (m *Metrics) AddContainerVec(v *prometheus.MetricVec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.perContainer = append(m.perContainer, v)
}
