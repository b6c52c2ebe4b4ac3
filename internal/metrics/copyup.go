package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/event"
)

// copyUpBuckets span a small file on a fast disk (10 µs) to a multi-gigabyte
// file on a slow one (1 min): copy-ups stall the writing process for that long.
var copyUpBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5, 10, 30, 60,
}

func init() {
	register(func(m *Metrics) func(*event.CopyUp) {
		duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "observer_copy_up_duration_seconds",
			Help:    "Time overlayfs spent copying one file or directory up to the container's layer (the caller waits for it).",
			Buckets: copyUpBuckets,
		}, []string{"container"})
		bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_copy_up_bytes_total",
			Help: "Bytes overlayfs copied up from image layers to container layers.",
		}, []string{"container"})
		total := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_copy_ups_total",
			Help: "Overlayfs copy-ups, by result (ok or the errno name, e.g. ENOSPC).",
		}, []string{"container", "result"})
		m.reg.MustRegister(duration, bytes, total)
		m.AddContainerVec(duration.MetricVec)
		m.AddContainerVec(bytes.MetricVec)
		m.AddContainerVec(total.MetricVec)
		return func(e *event.CopyUp) {
			ctr := m.ContainerLabel(e.ContainerID)
			duration.WithLabelValues(ctr).Observe(float64(e.DurationNS) / 1e9)
			bytes.WithLabelValues(ctr).Add(float64(e.BytesCopied))
			total.WithLabelValues(ctr, e.Result).Inc()
		}
	})
}
