package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func res(sensor, requested, mode, unavailable string) ModeResult {
	return ModeResult{Kernel: "6.18.44-fc", Sensor: sensor, Requested: requested, Mode: mode, Unavailable: unavailable}
}

func sampleColumns() []Column {
	host := []ModeResult{
		res("rename", "default", "tracepoint", ""),
		res("rename", "fentry", "", "fentry: load: operation not permitted"),
		res("rename", "kprobe", "", "kprobe: kernel has no kprobes"),
		res("rename", "tracepoint", "tracepoint", ""),
		res("rename", "tracepoint", "tracepoint", ""), // a second test forcing the same mode
		res("signal", "default", "tp_btf", ""),
		res("signal", "tp_btf", "tp_btf", ""),
		res("signal", "tracepoint", "tracepoint", ""),
		res("latency", "default", "tp_btf", ""),
	}
	vm := []ModeResult{
		res("rename", "default", "fentry", ""),
		res("rename", "fentry", "fentry", ""),
		res("rename", "kprobe", "kprobe", ""),
		res("rename", "tracepoint", "tracepoint", ""),
		res("signal", "default", "", "tp_btf: no BTF; tracepoint: gone"),
		res("signal", "tp_btf", "", "tp_btf: no | BTF"),
		res("signal", "tracepoint", "", "tracepoint: gone"),
		{Kernel: "5.10.0-32-amd64", Sensor: "latency", Requested: "default", Mode: "tp_btf", Variant: "tid_map"},
	}
	return []Column{{Header: HostHeader(host), Results: host}, {Header: "6.1 (QEMU)", Results: vm}}
}

func TestRenderTable(t *testing.T) {
	got, err := RenderTable(sampleColumns())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| sensor | host 6.18 | 6.1 (QEMU) |\n|---|---|---|\n",
		"| `rename` | tracepoint | fentry (kprobe, tracepoint) |\n",
		"| `signal` | tp_btf (tracepoint) | unavailable |\n",
		"- host 6.18, fentry: `rename`: load: operation not permitted\n- host 6.18, kprobe: `rename`: kernel has no kprobes\n",
		"- 6.1 (QEMU), tp_btf: `signal`: no \\| BTF\n",
		"Variants of the default modes (what the sensor probed at load, as in `/status`):\n\n- 6.1 (QEMU): `latency` tid_map\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	// Rows are sorted, so a rerun renders the same bytes.
	if strings.Index(got, "`rename`") > strings.Index(got, "`signal`") {
		t.Errorf("rows not sorted:\n%s", got)
	}
}

func TestRenderTableRefusesIncompleteOrInconsistentRuns(t *testing.T) {
	cases := map[string][]ModeResult{
		"no default-mode result": {res("rename", "tracepoint", "tracepoint", "")},
		"both attached and failed": {
			res("rename", "default", "tracepoint", ""),
			res("rename", "kprobe", "kprobe", ""),
			res("rename", "kprobe", "", "kprobe: flaky"),
		},
		"no attach-mode results": nil,
	}
	for want, rs := range cases {
		_, err := RenderTable([]Column{{Header: "host 6.18", Results: rs}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
	// A sensor that one kernel reported and another did not.
	cols := sampleColumns()
	cols[1].Results = append(cols[1].Results, res("cgroup", "default", "tp_btf", ""))
	if _, err := RenderTable(cols); err == nil || !strings.Contains(err.Error(), "no results for sensor cgroup") {
		t.Errorf("missing sensor: err = %v", err)
	}
}

func TestReplaceAndCheckTable(t *testing.T) {
	doc := "# t\n\nintro\n" + TableBegin + "\nold table\n" + TableEnd + "\n\nafter\n"
	block := "| a |\n|---|\n| b |\n"
	if diff, err := CheckTable(doc, block); err != nil || diff == "" {
		t.Fatalf("stale doc: diff %q, err %v", diff, err)
	} else if !strings.Contains(diff, "- old table\n") || !strings.Contains(diff, "+ | b |\n") {
		t.Errorf("diff:\n%s", diff)
	}
	out, err := ReplaceTable(doc, block)
	if err != nil {
		t.Fatal(err)
	}
	want := "# t\n\nintro\n" + TableBegin + "\n" + block + TableEnd + "\n\nafter\n"
	if out != want {
		t.Errorf("replaced:\n%s\nwant:\n%s", out, want)
	}
	if diff, err := CheckTable(out, block); err != nil || diff != "" {
		t.Errorf("fresh doc: diff %q, err %v", diff, err)
	}
	for _, bad := range []string{"no markers", TableEnd + TableBegin, TableBegin + TableBegin + TableEnd} {
		if _, err := ReplaceTable(bad, block); err == nil {
			t.Errorf("%q: want error", bad)
		}
		if _, err := CheckTable(bad, block); err == nil {
			t.Errorf("check %q: want error", bad)
		}
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff([]string{"a", "b", "c"}, []string{"a", "x", "c", "d"})
	want := "  a\n- b\n+ x\n  c\n+ d\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadModeResults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "results.jsonl")
	data := `{"probe":"kernel","name":"6.1"}
{"kernel":"6.1.0-57-amd64","sensor":"rename","requested":"default","mode":"fentry","binary":"tracer"}

{"kernel":"6.1.0-57-amd64","sensor":"rename","requested":"kprobe","mode":"","unavailable":"kprobe: x"}
`
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := ReadModeResults(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Mode != "fentry" || rs[1].Unavailable != "kprobe: x" {
		t.Fatalf("got %+v", rs)
	}
	if HostHeader(rs) != "host 6.1" {
		t.Errorf("header %q", HostHeader(rs))
	}
	os.WriteFile(p, []byte("not json\n"), 0o644)
	if _, err := ReadModeResults(p); err == nil {
		t.Error("malformed line: want error")
	}
}
