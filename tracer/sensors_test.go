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
