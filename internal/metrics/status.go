package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	sensorInfoDesc = prometheus.NewDesc("observer_sensor_info",
		"1 for each sensor's attach mode; mode=\"unavailable\" with the reason when it could not attach; variant: how it adapted to the kernel (per-thread state, types read), empty for sensors with one form.",
		[]string{"sensor", "mode", "reason", "variant"}, nil)
	eventsLostDesc = prometheus.NewDesc("observer_events_lost_total",
		"Events the kernel could not put in a sensor's ring buffer.",
		[]string{"sensor"}, nil)
	eventsReceivedDesc = prometheus.NewDesc("observer_events_received_total",
		"Events read from a sensor's ring buffer.",
		[]string{"sensor"}, nil)
	decodeErrorsDesc = prometheus.NewDesc("observer_event_decode_errors_total",
		"Ring-buffer records that could not be decoded.",
		[]string{"sensor"}, nil)
	busDroppedDesc = prometheus.NewDesc("observer_subscriber_dropped_events_total",
		"Events a slow consumer (HTTP stream, event file, recorder) missed because its queue was full.",
		[]string{"subscriber"}, nil)
)

// statusCollector reads sensor status and drop counts at scrape time, so the
// kernel's per-CPU counters are summed only when someone asks.
type statusCollector struct{ src Sources }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sensorInfoDesc, eventsLostDesc, eventsReceivedDesc, decodeErrorsDesc, busDroppedDesc} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Sensors != nil {
		for _, s := range c.src.Sensors() {
			mode := s.Mode
			if !s.Active() {
				mode = "unavailable"
			}
			ch <- prometheus.MustNewConstMetric(sensorInfoDesc, prometheus.GaugeValue, 1, s.Name, mode, s.Unavailable, s.Variant)
			if !s.Active() {
				continue
			}
			ch <- prometheus.MustNewConstMetric(eventsLostDesc, prometheus.CounterValue, float64(s.EventsLost), s.Name)
			ch <- prometheus.MustNewConstMetric(eventsReceivedDesc, prometheus.CounterValue, float64(s.EventsReceived), s.Name)
			ch <- prometheus.MustNewConstMetric(decodeErrorsDesc, prometheus.CounterValue, float64(s.DecodeErrors), s.Name)
		}
	}
	if c.src.BusDropped != nil {
		for name, n := range c.src.BusDropped() {
			ch <- prometheus.MustNewConstMetric(busDroppedDesc, prometheus.CounterValue, float64(n), name)
		}
	}
}
