package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/config"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/daemon"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/report"
	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer"
)

// envReexec makes the test binary run the observer CLI instead of the tests,
// so a subprocess (e.g. as another user) runs exactly this code.
const envReexec = "OBSERVER_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	testenv.SemLeakerMain()
	if os.Getenv(envReexec) == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestIncidentCaptureReportReplay is the incident drill: the real tracer and
// daemon run in-process, a helper named dockerd dies of SIGPIPE, the
// fatal_signal rule takes a capture, the report shows signal then daemon_exit
// for that pid, and a replay run as nobody (uid 65534, no BPF) reproduces the
// daemon metrics the capture implies. TestIncidentSemLeak is its residue half.
func TestIncidentCaptureReportReplay(t *testing.T) {
	testenv.RequireRoot(t)
	capDir := filepath.Join(t.TempDir(), "captures")
	_, stop := startInProcess(t, []string{"signal"}, "--capture-dir", capDir, "--incident-duration", "1s", "--docker-host", "none")

	pid := testenv.SIGPIPEDaemon(t)
	file := waitCapture(t, capDir)

	// The report: signal, then daemon_exit, for that pid.
	var out, errb bytes.Buffer
	if code := runReport([]string{file, "--format", "json"}, &out, &errb); code != 0 {
		t.Fatalf("report exit %d: %s", code, errb.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	sigAt, exitAt := -1, -1
	for i, it := range rep.Timeline {
		if it.PID != pid {
			continue
		}
		switch {
		case it.Kind == event.TypeSignal && sigAt < 0 && strings.Contains(it.Summary, fmt.Sprintf("SIGPIPE to dockerd (pid %d)", pid)):
			sigAt = i
		case it.Kind == event.TypeDaemonExit && exitAt < 0 && strings.Contains(it.Summary, "killed by SIGPIPE"):
			exitAt = i
		}
	}
	if sigAt < 0 || exitAt < 0 || sigAt > exitAt {
		t.Fatalf("timeline for pid %d: signal at %d, daemon_exit at %d; want both, in that order:\n%+v", pid, sigAt, exitAt, rep.Timeline)
	}
	if !strings.HasPrefix(rep.Header.Reason, "incident fatal_signal: SIGPIPE to dockerd") || !rep.Complete {
		t.Errorf("reason %q, complete %v", rep.Header.Reason, rep.Complete)
	}
	var text bytes.Buffer
	runReport([]string{file}, &text, io.Discard)
	t.Logf("report:\n%s", text.String())
	saveTestdata(t, file)

	// The replay, as nobody, reproduces the metrics the capture implies.
	want := expectedMetrics(t, file)
	got := replayAsNobody(t, file).metrics
	for series, n := range want {
		if got[series] != n {
			t.Errorf("replay: %s = %v, want %v (from the capture)", series, got[series], n)
		}
	}
	if len(want) < 2 {
		t.Errorf("expected metrics %v: want at least the signal and the exit", want)
	}
	stop()
}

// startInProcess runs the real tracer (the given sensors) and the daemon
// in-process with the given flags; it returns the daemon's base URL and a
// stop function that fails the test if the daemon ended with an error.
func startInProcess(t *testing.T, sensors []string, args ...string) (base string, stop func()) {
	t.Helper()
	cfg, err := config.Parse(args, config.Defaults{WatchComms: tracer.DefaultWatchComms}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tr, err := tracer.New(tracer.Options{Sensors: sensors, WatchComms: cfg.WatchComms, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tr.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	res, err := container.NewResolver(container.Options{DockerHost: "none", Logger: log})
	if err == nil {
		err = res.Start(ctx)
	}
	if err != nil {
		cancel()
		tr.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() {
		runErr <- daemon.Run(ctx, daemon.Options{Config: cfg, Source: tr, Resolver: res, Version: "test", Logger: log, Listener: ln})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("daemon: %v", err)
		}
		tr.Close()
	}
	t.Cleanup(stop)
	base = "http://" + ln.Addr().String()
	waitHTTP(t, base+"/healthz")
	return base, stop
}

// waitCapture waits for the incident capture to be complete.
func waitCapture(t *testing.T, dir string) string {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "capture-*incident-fatal-signal*.jsonl.gz"))
		slices.Sort(files)
		for _, f := range files {
			if complete(f) {
				return f
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no complete incident capture in %s within 15s", dir)
	return ""
}

func complete(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil {
		return false
	}
	for {
		if _, err := cr.Next(); err != nil {
			return errors.Is(err, io.EOF) && cr.Complete()
		}
	}
}

// readRecords reads a whole capture; any error but its end fails the test.
func readRecords(t *testing.T, path string) []capture.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr, err := capture.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var recs []capture.Record
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
}

// expectedMetrics counts the daemon series the capture's events imply.
func expectedMetrics(t *testing.T, path string) map[string]float64 {
	want := map[string]float64{}
	var lastResidue json.RawMessage
	for _, rec := range readRecords(t, path) {
		if rec.Kind == capture.KindSnapshot {
			if raw, ok := rec.Snapshot.Sections[residue.SectionResidue]; ok {
				lastResidue = raw
			}
		}
		switch e := rec.Event.(type) {
		case *event.Signal:
			want[fmt.Sprintf(`observer_daemon_signals_total{disposition=%q,signal=%q,target=%q}`, e.Disposition, e.Signal, e.TargetComm)]++
		case *event.DaemonExit:
			sig := e.Signal
			if sig == "" {
				sig = "none"
			}
			want[fmt.Sprintf(`observer_daemon_exits_total{signal=%q,target=%q}`, sig, e.Comm)]++
		}
	}
	// The residue gauges are the state of the capture's last snapshot (the
	// replay replays no scans; later residue events would be in it already).
	if lastResidue == nil {
		return want
	}
	var items []residue.Item
	if err := json.Unmarshal(lastResidue, &items); err != nil {
		t.Fatalf("residue section: %v", err)
	}
	want[`observer_sem_residue_arrays{kind="dm_udev_cookie"}`] = 0
	want[`observer_sem_residue_arrays{kind="other"}`] = 0
	want[`observer_veth_residue`] = 0
	for _, it := range items {
		if it.Resource == residue.ResourceSem {
			want[fmt.Sprintf(`observer_sem_residue_arrays{kind=%q}`, it.Kind)]++
		} else {
			want[`observer_veth_residue`]++
		}
	}
	return want
}

// replayed is what a replay serves once it is done.
type replayed struct {
	metrics map[string]float64 // the observer_ series
	status  daemon.Status
	residue residue.Report
}

// replayAsNobody runs `observer replay` as uid/gid 65534 and returns what it
// serves once the replay is done.
func replayAsNobody(t *testing.T, capFile string) replayed {
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody must reach the binary and the capture
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "observer.test")
	copyFile(t, self, bin, 0o755)
	capCopy := filepath.Join(dir, "capture.jsonl.gz")
	copyFile(t, capFile, capCopy, 0o644)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A capture is what /events showed: the replay serves it on its own
	// socket only (nobody's, in a directory nobody may write).
	sockDir := filepath.Join(dir, "run")
	if err := os.Mkdir(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(sockDir, 65534, 65534)
	sock := filepath.Join(sockDir, "replay.sock")
	cmd := exec.Command(bin, "replay", "--listen", addr, "--socket", sock, capCopy)
	cmd.Env = append(os.Environ(), envReexec+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("replay exited with %v:\n%s", err, stderr.String())
		}
		t.Logf("replay log:\n%s", stderr.String())
	}()
	waitHTTP(t, "http://"+addr+"/healthz")
	if resp, err := testHTTP.Get("http://" + addr + "/status"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("replay's /status over TCP: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	base := socketURL(sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			Source struct {
				Done  bool   `json:"done"`
				Error string `json:"error"`
			} `json:"source"`
		}
		getJSON(t, base+"/status", &st)
		if st.Source.Done {
			if st.Source.Error != "" {
				t.Fatalf("replay error: %s", st.Source.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replay not done within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the pipeline drains the last events
	var r replayed
	r.metrics = scrape(t, base+"/metrics", "observer_")
	getJSON(t, base+"/status", &r.status)
	getJSON(t, base+"/residue", &r.residue)
	return r
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func waitHTTP(t *testing.T, url string) {
	for range 100 {
		if resp, err := testHTTP.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

func getJSON(t *testing.T, url string, v any) {
	resp, err := testHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// scrape returns the samples whose names start with prefix, keyed by the
// exposition's series text.
func scrape(t *testing.T, url, prefix string) map[string]float64 {
	resp, err := testHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		fmt.Sscan(line[i+1:], &v)
		out[line[:i]] = v
	}
	return out
}

// saveTestdata keeps the real capture as a fuzz seed and report sample when
// OBSERVER_UPDATE_TESTDATA=1.
func saveTestdata(t *testing.T, file string) {
	if os.Getenv("OBSERVER_UPDATE_TESTDATA") != "1" {
		return
	}
	dst := filepath.Join("..", "..", "testdata", "captures", "sigpipe-dockerd.jsonl.gz")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	copyFile(t, file, dst, 0o644)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
