package eventlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/event"
)

func TestWriteLinesAndAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte("{\"kept\":true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	sub := b.Subscribe("file", Queue, nil)
	b.Publish(&event.Signal{Header: event.Header{Type: "signal"}, Signal: "SIGPIPE"})
	b.Publish(&event.DaemonExit{Header: event.Header{Type: "daemon_exit"}})
	b.Close()
	if err := Write(sub, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || lines[0] != `{"kept":true}` || !strings.Contains(lines[1], `"signal":"SIGPIPE"`) {
		t.Fatalf("file = %q, want the old line kept and two events appended", data)
	}
	for _, l := range lines[1:] {
		if _, err := event.Decode([]byte(l)); err != nil {
			t.Errorf("line %q does not decode: %v", l, err)
		}
	}
}

func TestOpenErrorIsClear(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "x"))
	if err == nil || !strings.Contains(err.Error(), "open event file") {
		t.Fatalf("err = %v", err)
	}
}
