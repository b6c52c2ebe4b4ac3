// Package metrics turns events and sensor status into Prometheus metrics. Event
// counters are updated in the pipeline; sensor and loss figures are read on scrape.
package metrics

import (
	"net/http"
	"reflect"
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
	// pods holds the pods seen in events by short id (nil: --pod-labels off),
	// so a container that exited keeps its pod series as long as its label.
	pods map[string]PodInfo

	// observers count events, by the event's Go type; built in New from the
	// sensors' registrations (see register).
	observers map[reflect.Type]func(event.Event)
}

// builders are the sensors' metrics, registered by each sensor's file
// (copyup.go, rename.go, signals.go ...) in its init.
var builders = map[reflect.Type]func(*Metrics) func(event.Event){}

// register adds a sensor's metrics for events of Go type E: build runs once
// per Metrics, registers the sensor's collectors (with m.reg and, for those
// with a container label, m.AddContainerVec) and returns the function that
// counts one event. Call it from an init.
func register[E event.Event](build func(m *Metrics) func(E)) {
	t := reflect.TypeFor[E]()
	if _, dup := builders[t]; dup {
		panic("metrics: " + t.String() + " registered twice")
	}
	builders[t] = func(m *Metrics) func(event.Event) {
		observe := build(m)
		return func(ev event.Event) { observe(ev.(E)) }
	}
}

// New registers the observer's metrics, plus the Go and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg:           prometheus.NewRegistry(),
		containers:    map[string]struct{}{},
		maxContainers: DefaultMaxContainers,
		observers:     map[reflect.Type]func(event.Event){},
	}
	m.reg.MustRegister(
		&statusCollector{src: src},
		buildInfo(buildinfo.Get()),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for t, build := range builders {
		m.observers[t] = build(m)
	}
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
	// After observing: the event may have just given its container a label.
	defer func() {
		if h := ev.Hdr(); h.Pod != "" {
			m.notePod(h)
		}
	}()
	if observe := m.observers[reflect.TypeOf(ev)]; observe != nil {
		observe(ev)
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
	delete(m.pods, short)
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
