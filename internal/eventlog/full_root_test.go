package eventlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
)

// A full disk stopped the --events file for good: after space was freed no
// more lines were written and the "file" dropped counter stayed 0. On a real
// full tmpfs the writer now resumes once space is freed, every line in the
// file is whole, and lines written plus events counted as dropped is exactly
// what was published.
func TestFullDiskResumesAndCountsEveryMissedEvent(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	testenv.SmallTmpfs(t, dir, "256k")
	defer func(d time.Duration) { RetryInterval = d }(RetryInterval)
	RetryInterval = 20 * time.Millisecond

	path := filepath.Join(dir, "events.jsonl")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	sub := b.Subscribe("file", Queue, nil)
	states := make(chan error, 16)
	done := make(chan error, 1)
	go func() { done <- f.Write(sub, nil, func(err error) { states <- err }) }()

	published := 0
	publish := func(n int) {
		for range n {
			published++
			b.Publish(&event.RenameExdev{Header: event.Header{Type: event.TypeRenameExdev, PID: uint32(published)},
				OldPath: "/some/fairly/long/path/to/make/lines/longer", NewPath: "/another/fairly/long/path"})
		}
	}
	publish(100)
	waitFor(t, func() bool { st, _ := os.Stat(path); return st != nil && st.Size() > 0 })

	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	ff, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ff.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	ff.Close()
	// Events that cannot be written, in bursts so that the buffer flushes.
	for range 20 {
		publish(500)
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-states:
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("onError(%v), want ENOSPC", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no write error reported on a full disk")
	}
	if sub.Dropped() == 0 {
		t.Error("nothing counted as dropped on a full disk")
	}
	os.Remove(filler)
	select {
	case err := <-states:
		if err != nil {
			t.Fatalf("after freeing space: onError(%v), want nil (resumed)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event file did not resume after space was freed")
	}
	publish(100)
	b.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.Close()

	data, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	lines, last := 0, uint32(0)
	sc := bufio.NewScanner(data)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue // the newline that ends a line cut by ENOSPC
		}
		var ev event.RenameExdev
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// A line cut by the error: its event is among the dropped.
			continue
		}
		lines++
		last = ev.PID
	}
	t.Logf("published %d, written %d, dropped %d", published, lines, sub.Dropped())
	if uint64(lines)+sub.Dropped() != uint64(published) {
		t.Errorf("written %d + dropped %d != published %d", lines, sub.Dropped(), published)
	}
	if last != uint32(published) {
		t.Errorf("last event written has pid %d, want %d (the events after the resume)", last, published)
	}
}
