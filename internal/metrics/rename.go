package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/event"
)

func init() {
	register(func(m *Metrics) func(*event.RenameExdev) {
		total := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "observer_rename_exdev_total",
			Help: "rename(2)/renameat(2)/renameat2(2) calls that failed with EXDEV, e.g. directory renames on overlayfs.",
		}, []string{"container"})
		m.reg.MustRegister(total)
		m.AddContainerVec(total.MetricVec)
		return func(e *event.RenameExdev) { total.WithLabelValues(m.ContainerLabel(e.ContainerID)).Inc() }
	})
}
