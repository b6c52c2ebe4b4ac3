package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer"
)

// daemonProc is the real observer binary running as a daemon for one test.
type daemonProc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	events string // --events file
	exited chan error
}

// buildObserver builds the binary into a directory anyone may read.
func buildObserver(t *testing.T) (bin string) {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and one test runs it as nobody.
	dir, err := os.MkdirTemp("", "observer-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "observer")
	// As make build does: static, with the version stamped in.
	build := exec.Command("go", "build", "-ldflags", "-X "+buildinfoPkg+".version="+testVersion+" -X "+buildinfoPkg+".revision="+testRevision, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The identity buildObserver stamps into the binary.
const (
	buildinfoPkg = "github.com/observer-dev/observer/internal/buildinfo"
	testVersion  = "9.9.9-e2e"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

// startObserver runs the observer with args, on a free port.
func startObserver(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	bin := buildObserver(t)
	p := &daemonProc{events: filepath.Join(dir, "events.jsonl"), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--events", p.events}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	addr := make(chan string, 1)
	go func() {
		serving := regexp.MustCompile(`msg=serving addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("observer: " + sc.Text())
			if m := serving.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		p.exited <- p.cmd.Wait()
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("observer exited before serving")
		}
		p.base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("observer did not start serving within 30s")
	}
	return p
}

func (p *daemonProc) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return string(body)
}

// waitEvent polls the --events file for the first event that matches.
func (p *daemonProc) waitEvent(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.events)
		for _, line := range strings.Split(string(data), "\n") {
			var ev map[string]any
			if json.Unmarshal([]byte(line), &ev) == nil && match(ev) {
				return ev
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, _ := os.ReadFile(p.events)
	t.Fatalf("no matching event within 20s; events file:\n%s", data)
	return nil
}

// waitMetric polls /metrics until a sample line is present.
func (p *daemonProc) waitMetric(t *testing.T, sample string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.get(t, "/metrics"), sample) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("metric sample %q not exported within 10s", sample)
}

// TestDockerEndToEnd runs the real observer against a private dockerd: a
// container renames a directory of its image layer (overlay2 refuses with
// EXDEV), and dockerd itself is then killed.
func TestDockerEndToEnd(t *testing.T) {
	testenv.RequireDocker(t)
	if data, _ := os.ReadFile("/sys/module/overlay/parameters/redirect_dir"); strings.TrimSpace(string(data)) == "Y" {
		t.Skip("overlayfs here defaults to redirect_dir=on: directory renames succeed without EXDEV")
	}
	d := testenv.StartDockerd(t)
	image := d.ImportBusybox(t)
	obs := startObserver(t, "--docker-host", d.Host)

	name := fmt.Sprintf("observer-e2e-%d", time.Now().UnixNano()%1e6)
	// The name lookup is prefetched on Docker's create event and in practice lands
	// before the container runs; the short pause keeps CI from depending on that
	// race, since correlation (by design) never waits for the Engine API.
	out, err := d.CLI("run", "--name", name, image, "sh", "-c", "sleep 0.5; mv /root /root-moved && ls -d /root-moved")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "/root-moved") {
		t.Fatalf("container output %q: busybox mv should have fallen back to copying", out)
	}
	idOut, err := d.CLI("inspect", "-f", "{{.Id}}", name)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(idOut)

	ev := obs.waitEvent(t, func(ev map[string]any) bool {
		return ev["type"] == "rename_exdev" && ev["container_id"] == id
	})
	if ev["container_name"] != name || ev["container_image"] != image || ev["comm"] != "mv" ||
		ev["old_path"] != "/root" || ev["new_path"] != "/root-moved" {
		t.Errorf("rename_exdev event = %v, want name %q image %q comm mv /root -> /root-moved", ev, name, image)
	}
	obs.waitMetric(t, fmt.Sprintf(`observer_rename_exdev_total{container=%q} 1`, id[:12]))

	// The latency sensor at its defaults: every syscall of the container counted
	// under Docker's seccomp profile, one in 16 timed, in one series each.
	calls := fmt.Sprintf(`observer_syscalls_total{container=%q,seccomp="filter"}`, id[:12])
	timed := fmt.Sprintf(`observer_syscall_duration_seconds_count{container=%q,seccomp="filter"}`, id[:12])
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := scrape(t, obs.base+"/metrics", "observer_syscall")
		if m[calls] > 0 && m[timed] > 0 {
			t.Logf("%s %.0f, %s %.0f", calls, m[calls], timed, m[timed])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s and %s > 0 after 10s", calls, timed)
		}
	}

	// Killing dockerd: the signal (sent by this test) and the exit are reported.
	dockerdPid := float64(d.Pid())
	d.Kill(t)
	sig := obs.waitEvent(t, func(ev map[string]any) bool {
		return ev["type"] == "signal" && ev["target_pid"] == dockerdPid
	})
	if sig["signal"] != "SIGKILL" || sig["target_comm"] != "dockerd" || sig["disposition"] != "default" ||
		sig["sender_pid"] != float64(os.Getpid()) {
		t.Errorf("signal event = %v, want SIGKILL from pid %d to dockerd", sig, os.Getpid())
	}
	exit := obs.waitEvent(t, func(ev map[string]any) bool {
		return ev["type"] == "daemon_exit" && ev["pid"] == dockerdPid
	})
	if exit["signal"] != "SIGKILL" {
		t.Errorf("daemon_exit = %v, want SIGKILL", exit)
	}
	obs.waitMetric(t, `observer_daemon_exits_total{signal="SIGKILL",target="dockerd"} 1`)
	obs.waitMetric(t, `observer_daemon_signals_total{disposition="default",signal="SIGKILL",target="dockerd"} 1`)
}

// TestDaemonLifecycle: the stamped version in --version, /status and
// build_info; sensors reported in /status and metrics; a SIGPIPE'd "dockerd"
// reported; SIGHUP reopens a rotated event file; SIGTERM detaches and exits 0.
func TestDaemonLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	out, err := exec.Command(buildObserver(t), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "observer "+testVersion+" (revision "+testRevision) {
		t.Errorf("observer --version: %v, %q", err, out)
	}
	obs := startObserver(t, "--docker-host", "none")

	var status struct {
		Version string
		Kernel  string
		Sensors []struct {
			Name, Mode, Unavailable string
		}
	}
	if err := json.Unmarshal([]byte(obs.get(t, "/status")), &status); err != nil {
		t.Fatal(err)
	}
	if status.Kernel == "" || len(status.Sensors) != len(tracer.SensorNames()) {
		t.Fatalf("/status = %+v, want the kernel and every sensor", status)
	}
	if want := testVersion + "+" + testRevision[:12]; status.Version != want {
		t.Errorf("/status version %q, want %q", status.Version, want)
	}
	obs.waitMetric(t, fmt.Sprintf(`observer_build_info{goversion=%q,revision=%q,version=%q} 1`, runtime.Version(), testRevision, testVersion))
	for _, s := range status.Sensors {
		if (s.Mode == "") == (s.Unavailable == "") {
			t.Errorf("sensor %s: want exactly one of mode / unavailable reason, got %+v", s.Name, s)
		}
		obs.waitMetric(t, fmt.Sprintf(`observer_sensor_info{mode=%q,reason=%q,sensor=%q} 1`, orUnavailable(s.Mode), s.Unavailable, s.Name))
	}
	if got := obs.get(t, "/healthz"); strings.TrimSpace(got) != "ok" {
		t.Errorf("/healthz = %q", got)
	}

	// A process named dockerd killed by SIGPIPE.
	pid := float64(testenv.SIGPIPEDaemon(t))
	sig := obs.waitEvent(t, func(ev map[string]any) bool { return ev["type"] == "signal" && ev["target_pid"] == pid })
	if sig["signal"] != "SIGPIPE" || sig["target_comm"] != "dockerd" {
		t.Errorf("signal = %v", sig)
	}
	obs.waitEvent(t, func(ev map[string]any) bool {
		return ev["type"] == "daemon_exit" && ev["pid"] == pid && ev["signal"] == "SIGPIPE"
	})
	obs.waitMetric(t, `observer_daemon_signals_total{disposition="default",signal="SIGPIPE",target="dockerd"} 1`)

	// logrotate: move the file away, SIGHUP. The daemon lives on, the moved
	// file keeps what it had, and the next event goes to a new file.
	rotated := obs.events + ".1"
	if err := os.Rename(obs.events, rotated); err != nil {
		t.Fatal(err)
	}
	obs.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the event file reopened at its path", func() bool {
		_, err := os.Stat(obs.events)
		return err == nil
	})
	pid2 := float64(testenv.SIGPIPEDaemon(t))
	obs.waitEvent(t, func(ev map[string]any) bool { return ev["type"] == "daemon_exit" && ev["pid"] == pid2 })
	if old, _ := os.ReadFile(rotated); !strings.Contains(string(old), fmt.Sprintf(`"pid":%d`, int(pid))) || strings.Contains(string(old), fmt.Sprintf(`"pid":%d,`, int(pid2))) {
		t.Errorf("rotated file should hold the first daemon's events and not the second's:\n%s", old)
	}

	obs.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-obs.exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
		obs.exited <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("observer did not exit within 15s of SIGTERM")
	}
}

func orUnavailable(mode string) string {
	if mode == "" {
		return "unavailable"
	}
	return mode
}

// TestWithoutPrivilegesNamesCapabilities runs the daemon as nobody.
func TestWithoutPrivilegesNamesCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command(buildObserver(t), "--docker-host", "none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitError {
		t.Fatalf("exit %d (%v), want %d; output %q", code, err, exitError, out)
	}
	if !strings.Contains(string(out), "missing CAP_BPF and CAP_PERFMON") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("output %q: want one line naming CAP_BPF and CAP_PERFMON", out)
	}
}

// TestLatencyWithExclusions: --sensors -rename still runs the latency sensor,
// and the daemon serves what it measures (/latency, the syscall metrics),
// whatever the spelling of the sensor selection.
func TestLatencyWithExclusions(t *testing.T) {
	testenv.RequireRoot(t)
	obs := startObserver(t, "--docker-host", "none", "--sensors", "-rename")
	var lat struct {
		SampleEvery  int    `json:"sample_every"`
		LatencyError string `json:"latency_error"`
	}
	if err := json.Unmarshal([]byte(obs.get(t, "/latency")), &lat); err != nil {
		t.Fatal(err)
	}
	if lat.SampleEvery == 0 || lat.LatencyError != "" {
		t.Errorf("/latency = %+v, want the latency sensor's figures", lat)
	}
	obs.waitMetric(t, `observer_syscalls_total{container="",seccomp="none"}`)
	var status struct{ Sensors []struct{ Name, Mode string } }
	if err := json.Unmarshal([]byte(obs.get(t, "/status")), &status); err != nil {
		t.Fatal(err)
	}
	for _, s := range status.Sensors {
		if s.Name == tracer.SensorRename {
			t.Errorf("rename excluded, yet in /status: %+v", s)
		}
	}
}
