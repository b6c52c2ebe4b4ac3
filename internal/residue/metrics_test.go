package residue

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// semArraysLabels gathers observer_sem_arrays as ipc_ns label -> value.
func semArraysLabels(t *testing.T, d *Detector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "observer_sem_arrays" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return out
}

// More IPC namespaces than labels: the observer's own namespace always has its
// own series with its real count, the others are chosen by inode (not by map
// order, so series do not flap between scrapes) and the rest sum to "other".
func TestSemArraysLabelsDeterministic(t *testing.T) {
	d, _, _ := fakeDetector(t, "", noLinks)
	semOf(d).ns = 5000 // above every other namespace: it must not be the one pushed out
	for i := range 3 {
		semOf(d).entries[semKey{semOf(d).ns, int32(i)}] = &semEntry{ns: semOf(d).ns, id: int32(i)}
	}
	const extra = maxNSLabels + 40
	for ns := uint32(1); ns <= extra; ns++ {
		semOf(d).entries[semKey{ns, 1}] = &semEntry{ns: ns, id: 1}
		semOf(d).entries[semKey{ns, 2}] = &semEntry{ns: ns, id: 2}
	}
	d.scanned = true
	first := semArraysLabels(t, d)
	if len(first) != maxNSLabels {
		t.Fatalf("%d ipc_ns labels, want the bound %d", len(first), maxNSLabels)
	}
	if first["5000"] != 3 {
		t.Fatalf("own namespace: %v, want its 3 arrays", first["5000"])
	}
	// Own + other leave maxNSLabels-2 for the others: inodes 1..254.
	kept := maxNSLabels - 2
	for ns := 1; ns <= kept; ns++ {
		if first[strconv.Itoa(ns)] != 2 {
			t.Fatalf("ipc_ns %d: %v, want 2 (lowest inodes keep their labels)", ns, first[strconv.Itoa(ns)])
		}
	}
	if want := float64(2 * (extra - kept)); first["other"] != want {
		t.Fatalf("other %v, want %v", first["other"], want)
	}
	for range 20 {
		again := semArraysLabels(t, d)
		if len(again) != len(first) {
			t.Fatalf("label set changed between scrapes: %d vs %d", len(again), len(first))
		}
		for k, v := range first {
			if again[k] != v {
				t.Fatalf("ipc_ns %s: %v then %v between scrapes", k, v, again[k])
			}
		}
	}

	// Few namespaces: all labelled, no "other"; the own one even when empty.
	d2, _, _ := fakeDetector(t, "", noLinks)
	semOf(d2).ns = 7
	semOf(d2).entries[semKey{9, 1}] = &semEntry{ns: 9, id: 1}
	d2.scanned = true
	got := semArraysLabels(t, d2)
	if len(got) != 2 || got["7"] != 0 || got["9"] != 1 {
		t.Fatalf("%v, want own 7=0 and 9=1", got)
	}
}
