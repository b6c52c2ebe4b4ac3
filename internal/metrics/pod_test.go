package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/observer-dev/observer/internal/event"
)

// Only containers that hold a container label value get a pod series: the
// set is bounded like the label and goes when the container is forgotten.
func TestPodInfoFollowsTheContainerLabel(t *testing.T) {
	m := New(Sources{})
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	m.RegisterPodInfo(func() []PodInfo {
		return []PodInfo{
			{ContainerID: a, Pod: "web-0", Namespace: "shop", Container: "nginx"},
			{ContainerID: b, Pod: "db-0", Namespace: "shop", Container: "pg"},
			{ContainerID: strings.Repeat("c", 64)}, // not in a pod
		}
	})
	m.ContainerLabel(a)
	m.ContainerLabel(strings.Repeat("c", 64))
	want := `
# HELP observer_container_info 1 per labelled container that belongs to a Kubernetes pod (--pod-labels): join on container to name the pod, e.g. * on (container) group_left(pod, namespace) observer_container_info.
# TYPE observer_container_info gauge
observer_container_info{container="aaaaaaaaaaaa",namespace="shop",pod="web-0",pod_container="nginx"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "observer_container_info"); err != nil {
		t.Error(err)
	}
	m.ForgetContainer(a)
	if n, err := testutil.GatherAndCount(m.Registry(), "observer_container_info"); err != nil || n != 0 {
		t.Errorf("after forgetting: %d series (%v), want 0", n, err)
	}
}

// A container that exited (no longer listed live) keeps its pod series from
// its events while its label lives.
func TestPodInfoFromEvents(t *testing.T) {
	m := New(Sources{})
	m.RegisterPodInfo(func() []PodInfo { return nil })
	id := strings.Repeat("d", 64)
	m.Observe(&event.RenameExdev{Header: event.Header{Type: event.TypeRenameExdev, ContainerID: id, Pod: "job-1", PodNamespace: "batch", PodContainer: "work"}})
	if n, _ := testutil.GatherAndCount(m.Registry(), "observer_container_info"); n != 1 {
		t.Fatalf("%d pod series, want 1", n)
	}
	m.ForgetContainer(id)
	if n, _ := testutil.GatherAndCount(m.Registry(), "observer_container_info"); n != 0 {
		t.Errorf("%d pod series after forgetting, want 0", n)
	}
}
