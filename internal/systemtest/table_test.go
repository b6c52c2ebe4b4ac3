package systemtest

import (
	"strings"
	"testing"
)

func fullRun(kernel string, st Status) []Result {
	var rs []Result
	for _, s := range Scenarios {
		rs = append(rs, Result{Kernel: kernel, Scenario: s.Name, Status: st, Facts: "f|" + s.Name, Measured: "m " + s.Name, Reason: "copyup: no fentry"})
	}
	return rs
}

func TestRenderVerdicts(t *testing.T) {
	got, err := RenderVerdicts([]Column{{"6.1", fullRun("6.1", Pass)}, {"5.10", fullRun("5.10", Unavailable)}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3+len(Scenarios) {
		t.Fatalf("want a comment, a header, a rule and %d rows, got:\n%s", len(Scenarios), got)
	}
	if lines[1] != "| scenario | 6.1 | 5.10 |" {
		t.Errorf("header %q", lines[1])
	}
	want := "| " + Scenarios[0].Title + ` | pass: f\|` + Scenarios[0].Name + " | unavailable: copyup: no fentry |"
	if lines[3] != want {
		t.Errorf("first row\n got %q\nwant %q", lines[3], want)
	}
	m, err := RenderMeasured([]Column{{"6.1", fullRun("6.1", Pass)}, {"5.10", fullRun("5.10", Unavailable)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, "| m "+Scenarios[0].Name+" | - |") {
		t.Errorf("measured table: an unavailable scenario must show -, got:\n%s", m)
	}
}

func TestRenderRefusesPartialRun(t *testing.T) {
	if _, err := RenderVerdicts([]Column{{"6.1", fullRun("6.1", Pass)[:1]}}); err == nil {
		t.Fatal("a run without every scenario rendered a table")
	}
}

func TestCollect(t *testing.T) {
	objs := []map[string]any{
		{"scenario": Scenarios[0].Name, "status": "fail", "reason": "no event"},
		{"scenario": Scenarios[1].Name, "status": "unavailable", "reason": "rename: x"},
		{"scenario": Scenarios[1].Name, "status": "pass"},
		{"scenario": "bogus", "status": "pass"},
		{"status": "pass"},
	}
	rs, problems := collect("6.1", objs, nil)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		Scenarios[0].Name + " failed: no event",
		Scenarios[1].Name + " reported twice",
		"unknown scenario bogus",
		"result line without a scenario",
		Scenarios[2].Name + ": no result",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
	if len(rs) != 2 || rs[0].Kernel != "6.1" {
		t.Errorf("results %+v", rs)
	}
}
