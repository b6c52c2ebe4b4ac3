package tracer

import (
	"slices"
	"strings"
	"testing"
)

func TestSelectSensors(t *testing.T) {
	all := SensorNames()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(drop, n) })
	}
	for _, c := range []struct {
		list []string
		want []string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"rename", "signal"}, []string{"rename", "signal"}, ""},
		{[]string{"-latency"}, without("latency"), ""},
		{[]string{"-latency", "-seccomp", "-latency"}, without("latency", "seccomp"), ""},
		{[]string{"-latency", "rename"}, nil, "not both"},
		{[]string{"-bogus"}, nil, `unknown sensor "bogus"`},
		{[]string{"*"}, nil, `unknown sensor "*"`},
		{all, all, ""},
	} {
		got, err := selectSensors(c.list)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want %q", c.list, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, %v; want %v", c.list, got, err, c.want)
		}
	}
	var every []string
	for _, n := range all {
		every = append(every, "-"+n)
	}
	if _, err := selectSensors(every); err == nil {
		t.Error("excluding every sensor: no error")
	}
}

// TestSensorExclusionStarts: --sensors -latency,-seccomp starts the others
// and not those (on the real kernel: the status lists what was started).
func TestSensorExclusionStarts(t *testing.T) {
	requireRoot(t)
	tr, err := New(Options{Sensors: []string{"-latency", "-seccomp"}, Logger: quietLogger(), RetryInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var got []string
	for _, st := range tr.Status() {
		got = append(got, st.Name)
	}
	slices.Sort(got)
	want := slices.DeleteFunc(SensorNames(), func(n string) bool { return n == SensorLatency || n == SensorSeccomp })
	if !slices.Equal(got, want) {
		t.Errorf("sensors in status %v, want %v", got, want)
	}
}
