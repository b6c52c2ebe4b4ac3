package residue

import "github.com/prometheus/client_golang/prometheus"

// Describe implements prometheus.Collector: every resource's gauges.
func (d *Detector) Describe(ch chan<- *prometheus.Desc) {
	for _, r := range d.resources {
		r.Describe(ch)
	}
}

// Collect implements prometheus.Collector: figures are read from the
// inventories at scrape time.
func (d *Detector) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.scanned {
		return // no numbers before the first scan rather than zeros that look measured
	}
	byResource := map[string][]Item{}
	for _, it := range d.src.residue(d.src.now()) {
		byResource[it.Resource] = append(byResource[it.Resource], it)
	}
	for _, r := range d.resources {
		r.Collect(ch, byResource[r.Name()])
	}
}
