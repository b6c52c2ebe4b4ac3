package tracer

import (
	"testing"

	"github.com/cilium/ebpf"
)

func TestHistEntriesBudget(t *testing.T) {
	const histSize = 336 // struct hist: 40 buckets, sum, aux
	for _, c := range []struct {
		maxCgroups, cpus int
		want             uint32
	}{
		{0, 1, 4096},
		{0, 12, 4096},
		{0, 13, 3840},
		{0, 64, 780},
		{0, 196, 256}, // the floor, just above the budget
		{0, 1024, 256},
		{100, 64, 100}, // an explicit bound wins
		{0, 0, 4096},
	} {
		o := LatencyOptions{MaxCgroups: c.maxCgroups}
		got := o.histEntries(histSize, c.cpus)
		if got != c.want {
			t.Errorf("max cgroups %d, %d CPUs: %d entries, want %d", c.maxCgroups, c.cpus, got, c.want)
		}
		if c.maxCgroups == 0 && c.cpus > 0 && got > minHistEntries && int(got)*histSize*c.cpus > histMapBudget {
			t.Errorf("%d CPUs: %d entries use %d bytes, over the %d budget", c.cpus, got, int(got)*histSize*c.cpus, histMapBudget)
		}
	}
}

// TestHistMapsSized: the loaded maps carry the budgeted size on this kernel's CPUs.
func TestHistMapsSized(t *testing.T) {
	requireRoot(t)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for sensor, m := range map[string]string{SensorLatency: "latency_hist", SensorSeccomp: "filter_hist"} {
		tr := startSensor(t, sensor, "", Options{})
		tr.mapsMu.RLock()
		maps, err := tr.sensorMaps(sensor)
		if err != nil {
			tr.mapsMu.RUnlock()
			t.Logf("%s not running here: %v", sensor, err)
			continue
		}
		hm := maps[m]
		want := (&LatencyOptions{}).histEntries(hm.ValueSize(), cpus)
		if n := maps["overflow"].MaxEntries(); n != uint32(overflowReasons) {
			t.Errorf("%s overflow map has %d reasons, Go reads %d", sensor, n, overflowReasons)
		}
		if hm.MaxEntries() != want {
			t.Errorf("%s: max entries %d, want %d (%d possible CPUs, %d-byte values)", m, hm.MaxEntries(), want, cpus, hm.ValueSize())
		}
		tr.mapsMu.RUnlock()
	}
}
