package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/event"
)

// The signal sensor's metrics: signals that would kill a watched daemon, and
// its exits. Their labels are daemon names, not containers.
func init() {
	register(func(m *Metrics) func(*event.Signal) {
		signals := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_daemon_signals_total",
			Help: "Signals whose default action kills, generated for a watched daemon.",
		}, []string{"target", "signal", "disposition"})
		m.reg.MustRegister(signals)
		return func(e *event.Signal) { signals.WithLabelValues(e.TargetComm, e.Signal, e.Disposition).Inc() }
	})
	register(func(m *Metrics) func(*event.DaemonExit) {
		exits := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_daemon_exits_total",
			Help: "Exits of watched daemons, by terminating signal (none for a normal exit).",
		}, []string{"target", "signal"})
		m.reg.MustRegister(exits)
		return func(e *event.DaemonExit) {
			sig := e.Signal
			if sig == "" {
				sig = "none"
			}
			exits.WithLabelValues(e.Comm, sig).Inc()
		}
	})
}
