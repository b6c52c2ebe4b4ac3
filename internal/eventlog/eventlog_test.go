package eventlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if err := f.Write(sub, nil, nil); err != nil {
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

// TestReopenFollowsLogrotate does what logrotate does: the file is moved
// away, then SIGHUP (Reopen). Events before stay in the moved file, events
// after go to a new file at the path, and nothing is lost or truncated.
func TestReopenFollowsLogrotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	sub := b.Subscribe("file", Queue, nil)
	reopened := make(chan error, 4)
	done := make(chan error, 1)
	go func() { done <- f.Write(sub, func(err error) { reopened <- err }, nil) }()

	b.Publish(&event.Signal{Header: event.Header{Type: "signal"}, Signal: "SIGPIPE"})
	waitFor(t, func() bool { data, _ := os.ReadFile(path); return strings.Contains(string(data), "SIGPIPE") })
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	f.Reopen()
	if err := <-reopened; err != nil {
		t.Fatalf("reopen: %v", err)
	}
	b.Publish(&event.Signal{Header: event.Header{Type: "signal"}, Signal: "SIGKILL"})

	// A reopen that cannot open the path (a directory is in its way, even
	// for root) keeps the file it has.
	if err := os.Rename(path, filepath.Join(dir, "events.jsonl.2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	f.Reopen()
	if err := <-reopened; err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("reopen onto a directory: %v, want an error saying so", err)
	}
	b.Publish(&event.Signal{Header: event.Header{Type: "signal"}, Signal: "SIGTERM"})
	b.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.Close()

	old, _ := os.ReadFile(rotated)
	if n := strings.Count(string(old), "\n"); n != 1 || !strings.Contains(string(old), "SIGPIPE") {
		t.Errorf("rotated file = %q, want the one event before the rotation", old)
	}
	cur, _ := os.ReadFile(filepath.Join(dir, "events.jsonl.2"))
	if n := strings.Count(string(cur), "\n"); n != 2 || !strings.Contains(string(cur), "SIGKILL") || !strings.Contains(string(cur), "SIGTERM") {
		t.Errorf("reopened file = %q, want the two events after the rotation", cur)
	}
}

func TestReopenStdoutIsNoop(t *testing.T) {
	f, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	f.Reopen()
	select {
	case <-f.reopen:
		t.Fatal("stdout queued a reopen")
	default:
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// An existing 0644 events file is tightened: the events name every process
// and path on the node.
func TestExistingFileTightened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // past the umask
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
}
