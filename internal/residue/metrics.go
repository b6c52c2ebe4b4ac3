package residue

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// maxNSLabels bounds the ipc_ns label; further namespaces count under "other".
const maxNSLabels = 256

var (
	semArraysDesc = prometheus.NewDesc("observer_sem_arrays",
		"System V semaphore arrays known, by IPC namespace inode (the observer's own namespace is scanned; others are known from events).",
		[]string{"ipc_ns"}, nil)
	semLimitDesc = prometheus.NewDesc("observer_sem_arrays_limit",
		"SEMMNI, the most semaphore arrays the observer's IPC namespace may hold (4th field of /proc/sys/kernel/sem).",
		nil, nil)
	semRatioDesc = prometheus.NewDesc("observer_sem_arrays_used_ratio",
		"Semaphore arrays in the observer's IPC namespace divided by SEMMNI; at 1 semget(2) fails with ENOSPC (dockerd with devicemapper cannot start).",
		nil, nil)
	semResidueDesc = prometheus.NewDesc("observer_sem_residue_arrays",
		"Semaphore arrays left behind: creator exited (or unknown) and not removed after the grace period.",
		[]string{"kind"}, nil)
	vethDesc = prometheus.NewDesc("observer_veth_interfaces",
		"veth interfaces in the observer's network namespace.", nil, nil)
	vethResidueDesc = prometheus.NewDesc("observer_veth_residue",
		"veth interfaces left behind: peer gone, peer namespace without processes, or on a Docker bridge with no running container.",
		nil, nil)
)

// Describe implements prometheus.Collector.
func (d *Detector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{semArraysDesc, semLimitDesc, semRatioDesc, semResidueDesc, vethDesc, vethResidueDesc} {
		ch <- desc
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
	now := d.opts.now()
	counts, ownCount := d.semArraysByNS()
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(semArraysDesc, prometheus.GaugeValue, float64(c.n), c.label)
	}
	if d.semLimits.SEMMNI > 0 {
		ch <- prometheus.MustNewConstMetric(semLimitDesc, prometheus.GaugeValue, float64(d.semLimits.SEMMNI))
		ch <- prometheus.MustNewConstMetric(semRatioDesc, prometheus.GaugeValue, float64(ownCount)/float64(d.semLimits.SEMMNI))
	}
	byKind := map[string]int{KindDMUdevCookie: 0, KindOther: 0}
	veths := 0
	for _, it := range d.currentLocked(now) {
		switch it.Resource {
		case ResourceSem:
			if _, ok := byKind[it.Kind]; ok {
				byKind[it.Kind]++
			} else {
				byKind[KindOther]++ // a capture from a build with other kinds: keep the label set bounded
			}
		case ResourceVeth:
			veths++
		}
	}
	for k, n := range byKind {
		ch <- prometheus.MustNewConstMetric(semResidueDesc, prometheus.GaugeValue, float64(n), k)
	}
	ch <- prometheus.MustNewConstMetric(vethDesc, prometheus.GaugeValue, float64(len(d.veths)))
	ch <- prometheus.MustNewConstMetric(vethResidueDesc, prometheus.GaugeValue, float64(veths))
}

type nsCount struct {
	label string
	n     int
}

// semArraysByNS counts arrays per IPC namespace for observer_sem_arrays with a
// label set that does not depend on map order: first the observer's own
// namespace (live only) with its real count, always; then the others by inode,
// the lowest while labels last (maxNSLabels in all); the rest summed as "other".
func (d *Detector) semArraysByNS() (counts []nsCount, own int) {
	perNS := map[uint32]int{}
	for k := range d.sems {
		if d.offline == nil && k.ns == d.semNS {
			own++
		} else {
			perNS[k.ns]++
		}
	}
	if d.offline == nil {
		counts = append(counts, nsCount{strconv.FormatUint(uint64(d.semNS), 10), own})
	}
	nss := make([]uint32, 0, len(perNS))
	for ns := range perNS {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	room := maxNSLabels - len(counts)
	if len(nss) > room {
		room-- // keep a label for "other"
	}
	rest := 0
	for i, ns := range nss {
		if i < room {
			counts = append(counts, nsCount{strconv.FormatUint(uint64(ns), 10), perNS[ns]})
		} else {
			rest += perNS[ns]
		}
	}
	if rest > 0 {
		counts = append(counts, nsCount{"other", rest})
	}
	return counts, own
}
