package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/observer-dev/observer/internal/event"
)

// PodInfo is one container's pod, from the kubelet's Docker labels.
type PodInfo struct {
	ContainerID, Pod, Namespace, Container string
}

var podInfoDesc = prometheus.NewDesc("observer_container_info",
	"1 per labelled container that belongs to a Kubernetes pod (--pod-labels): join on container to name the pod, e.g. * on (container) group_left(pod, namespace) observer_container_info.",
	[]string{"container", "pod", "namespace", "pod_container"}, nil)

// podCollector exports observer_container_info for the containers that hold
// a container label value, so the series are bounded and forgotten with it.
type podCollector struct {
	m    *Metrics
	list func() []PodInfo
}

// RegisterPodInfo exports observer_container_info from list, read on scrape.
// Pods seen in events are kept too, while their container label lives.
func (m *Metrics) RegisterPodInfo(list func() []PodInfo) {
	m.mu.Lock()
	m.pods = map[string]PodInfo{}
	m.mu.Unlock()
	m.reg.MustRegister(&podCollector{m: m, list: list})
}

func (m *Metrics) notePod(h *event.Header) {
	if len(h.ContainerID) < 12 {
		return
	}
	short := h.ContainerID[:12]
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, labelled := m.containers[short]; m.pods != nil && labelled {
		m.pods[short] = PodInfo{ContainerID: h.ContainerID, Pod: h.Pod, Namespace: h.PodNamespace, Container: h.PodContainer}
	}
}

func (c *podCollector) Describe(ch chan<- *prometheus.Desc) { ch <- podInfoDesc }

func (c *podCollector) Collect(ch chan<- prometheus.Metric) {
	live := c.list()
	c.m.mu.Lock()
	pods := make(map[string]PodInfo, len(c.m.pods)+len(live))
	for short, p := range c.m.pods {
		pods[short] = p
	}
	for _, p := range live {
		if p.Pod == "" || len(p.ContainerID) < 12 {
			continue
		}
		if _, labelled := c.m.containers[p.ContainerID[:12]]; labelled {
			pods[p.ContainerID[:12]] = p
		}
	}
	c.m.mu.Unlock()
	for short, p := range pods {
		ch <- prometheus.MustNewConstMetric(podInfoDesc, prometheus.GaugeValue, 1, short, p.Pod, p.Namespace, p.Container)
	}
}
