package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSONIsFlatAndRoundTrips(t *testing.T) {
	in := &RenameExdev{
		Header: Header{
			Time: time.Date(2026, 11, 29, 12, 0, 0, 123, time.UTC), Type: TypeRenameExdev,
			PID: 10, TID: 11, Comm: "mv", CgroupID: 42, ContainerID: strings.Repeat("a", 64),
		},
		OldPath: "/lower/dir", NewPath: "/lower/dir2", Flags: 1,
	}
	line, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var flat map[string]any
	if err := json.Unmarshal(line, &flat); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "type", "pid", "tid", "comm", "cgroup_id", "container_id", "old_path", "new_path", "flags"} {
		if _, ok := flat[k]; !ok {
			t.Errorf("field %q missing in %s", k, line)
		}
	}
	if flat["time"] != "2026-11-29T12:00:00.000000123Z" {
		t.Errorf("time = %v, want RFC 3339 nano", flat["time"])
	}
	out, err := Decode(line)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := out.(*RenameExdev)
	if !ok || *got != *in {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	for _, line := range []string{``, `{`, `[]`, `{"type":"nope"}`, `{"type":"signal","pid":"x"}`} {
		if _, err := Decode([]byte(line)); err == nil {
			t.Errorf("Decode(%q): want error", line)
		}
	}
}

func TestSignalName(t *testing.T) {
	for signo, want := range map[int32]string{13: "SIGPIPE", 9: "SIGKILL", 31: "SIGSYS", 34: "SIGRTMIN", 40: "SIGRTMIN+6", 0: "SIG0", 99: "SIG99"} {
		if got := SignalName(signo); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", signo, got, want)
		}
	}
}
