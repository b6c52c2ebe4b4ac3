package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/incident"
	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/testenv"
)

// chanSource is a Source fed by the test.
type chanSource chan event.Event

func (c chanSource) Events() <-chan event.Event { return c }
func (c chanSource) Status() []sensor.Status {
	return []sensor.Status{{Name: "rename", Mode: "tracepoint"}}
}

// hostOnly resolves every cgroup to the host.
type hostOnly struct{}

func (hostOnly) CgroupCreated(uint64, string)      {}
func (hostOnly) CgroupRemoved(uint64, string)      {}
func (hostOnly) Lookup(uint64) container.Container { return container.Container{} }
func (hostOnly) Containers() []container.Container { return nil }
func (hostOnly) Gone() <-chan string               { return nil }

// TestCaptureOnFullDisk: a capture into a 64 KiB tmpfs fails with a clear
// error, leaves a partial file readable up to its last flush, and the daemon
// goes on (serving, recording, capturing elsewhere).
func TestCaptureOnFullDisk(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "captures")
	os.Mkdir(dir, 0o700)
	testenv.SmallTmpfs(t, dir, "64k")

	cfg, err := config.Parse([]string{"--capture-dir", dir, "--incident-rules", "none"}, config.Defaults{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	src := make(chanSource, 1024)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(ctx, Options{Config: cfg, Source: src, Resolver: hostOnly{}, Version: "test",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: ln})
	}()
	base := "http://" + ln.Addr().String()

	// Random paths barely compress: 20000 events are far more than 64 KiB.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		src <- &event.RenameExdev{Header: event.Header{Time: time.Now(), Type: event.TypeRenameExdev, PID: uint32(i)},
			OldPath: fmt.Sprintf("/%016x%016x", rng.Uint64(), rng.Uint64()), NewPath: "/x"}
	}
	waitStatus(t, base, func(st Status) bool { return st.Recorder != nil && st.Recorder.Entries > 3000 })

	resp, err := http.Post(base+"/capture?duration=100ms", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var res incident.Result
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(res.Error, "no space left on device") {
		t.Fatalf("status %d, result %+v: want 500 and ENOSPC", resp.StatusCode, res)
	}
	t.Logf("full disk: %+v", res)

	// The partial file reads up to its last complete member, with a warning.
	f, err := os.Open(res.File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil {
		t.Fatalf("partial capture unreadable: %v", err)
	}
	n := 0
	for {
		_, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("partial capture: %v after %d records", err, n)
		}
		n++
	}
	if n == 0 || cr.Complete() || len(cr.Warnings()) == 0 {
		t.Errorf("partial capture: %d records, complete %v, warnings %q", n, cr.Complete(), cr.Warnings())
	}
	t.Logf("partial capture: %d records readable; warnings %q", n, cr.Warnings())

	// The daemon goes on: it records new events and streams a capture.
	src <- &event.DaemonExit{Header: event.Header{Time: time.Now(), Type: event.TypeDaemonExit, PID: 4242, Comm: "dockerd"}, Signal: "SIGKILL"}
	resp, err = http.Post(base+"/capture?duration=100ms&stream=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cr, err = capture.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for {
		rec, err := cr.Next()
		if err != nil {
			break
		}
		if rec.Kind == capture.KindEvent && rec.Event.Hdr().PID == 4242 {
			found = true
		}
	}
	if !found || !cr.Complete() {
		t.Errorf("capture after the full disk: found the new event %v, complete %v", found, cr.Complete())
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("daemon: %v", err)
	}
}

func waitStatus(t *testing.T, base string, ok func(Status) bool) {
	t.Helper()
	for range 200 {
		resp, err := http.Get(base + "/status")
		if err == nil {
			var st Status
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if ok(st) {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("status condition not met in 5s")
}
