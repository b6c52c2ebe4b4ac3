package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/observer-dev/observer/internal/testenv"
)

// corePanels must show data on any host the observer runs on (this one has no
// fentry or kprobes, so copy-up and seccomp filter panels may stay empty; their
// expressions must still parse).
var corePanels = []string{
	"Syscall latency by seccomp mode (p50, p99)",
	"Syscalls per second by seccomp mode",
	"Semaphore arrays used (of SEMMNI)",
	"Residue: semaphores and veths left behind",
	"Signals to watched daemons",
	"Events lost and dropped",
	"Sensors",
}

// TestDashboardAndRulesAgainstPrometheus runs the real observer, makes a
// "dockerd" die of SIGPIPE, lets a real Prometheus (Debian's) scrape it, lints
// the exposition with promtool, and evaluates every PromQL expression of the
// Grafana dashboard and the alert rules there: each must parse, and the core
// panels must return data.
func TestDashboardAndRulesAgainstPrometheus(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs Debian's prometheus)", tool)
		}
	}
	dir := t.TempDir()
	obsAddr := startObserver(t, dir)

	// Lint the real exposition.
	body := httpGet(t, "http://"+obsAddr+"/metrics")
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	promAddr := startPrometheus(t, dir, obsAddr)
	// Activity: a "dockerd" killed by SIGPIPE; the latency sensor counts this
	// test's own syscalls.
	testenv.SIGPIPEDaemon(t)
	waitFor(t, 30*time.Second, "Prometheus scraped the SIGPIPE", func() bool {
		res, err := query(promAddr, `observer_daemon_signals_total{signal="SIGPIPE",target="dockerd"}`)
		return err == nil && len(res) > 0
	})
	time.Sleep(3 * time.Second) // rates need a few samples after the first

	exprs := dashboardExprs(t)
	for _, r := range ruleExprs(t) {
		exprs = append(exprs, panelExpr{panel: "alert " + r.panel, expr: r.expr})
	}
	core := map[string]bool{}
	for _, p := range corePanels {
		core[p] = true
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		res, err := query(promAddr, e.expr)
		if err != nil {
			t.Errorf("%s: %s: %v", e.panel, e.expr, err)
			continue
		}
		t.Logf("%s: %d series: %s", e.panel, len(res), e.expr)
		if len(res) > 0 {
			seen[e.panel] = true
		}
	}
	for _, p := range corePanels {
		if !seen[p] {
			t.Errorf("core panel %q returned no data", p)
		}
	}
	// The alert on the SIGPIPE'd daemon fires from what was scraped.
	res, err := query(promAddr, `ALERTS{alertname="ObserverDaemonKilledBySignal"}`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ObserverDaemonKilledBySignal firing", func() bool {
		res, err = query(promAddr, `ALERTS{alertname="ObserverDaemonKilledBySignal",alertstate="firing",target="dockerd",signal="SIGPIPE"}`)
		return err == nil && len(res) > 0
	})
}

type panelExpr struct{ panel, expr string }

// dashboardExprs are every target's expression and every query variable, with
// Grafana's variables replaced by what Prometheus accepts.
func dashboardExprs(t *testing.T) []panelExpr {
	data, err := readRepoFile("deploy/grafana/observer.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
			Panels  []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		Templating struct {
			List []struct {
				Name  string
				Type  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var out []panelExpr
	add := func(panel, expr string) {
		out = append(out, panelExpr{panel, grafanaVars(expr)})
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add(p.Title, tg.Expr)
		}
		for _, sub := range p.Panels {
			for _, tg := range sub.Targets {
				add(sub.Title, tg.Expr)
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		if m := labelValues.FindStringSubmatch(s); m != nil {
			add("variable "+v.Name, m[1])
		} else {
			t.Errorf("variable %s: query %v is not label_values(METRIC, LABEL)", v.Name, v.Query)
		}
	}
	if len(out) < len(corePanels) {
		t.Fatalf("only %d expressions in the dashboard", len(out))
	}
	return out
}

func grafanaVars(expr string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h", "${instance}", ".*", "$instance", ".*").Replace(expr)
}

func ruleExprs(t *testing.T) []panelExpr {
	data, err := readRepoFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []panelExpr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, panelExpr{r.Alert, r.Expr})
		}
	}
	return out
}

func query(promAddr, expr string) ([]json.RawMessage, error) {
	resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	return r.Data.Result, nil
}

// startObserver builds and runs the real daemon on a free port; it returns
// the address.
func startObserver(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "observer")
	build := exec.Command("go", "build", "-o", bin, "./cmd/observer")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--listen", addr, "--socket", filepath.Join(dir, "observer.sock"), "--docker-host", "none",
		"--capture-dir", filepath.Join(dir, "captures"))
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("observer log:\n%s", logs.String())
		}
	})
	waitFor(t, 30*time.Second, "observer ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return addr
}

// startPrometheus runs Debian's Prometheus on 127.0.0.1 with its own data
// directory, scraping the observer every second, with the alert rules loaded.
func startPrometheus(t *testing.T, dir, target string) string {
	t.Helper()
	rules, err := filepath.Abs(filepath.Join(repoRoot(), "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: observer
    static_configs:
      - targets: [%q]
`, rules, target)), 0o644)
	addr := freeAddr(t)
	cmd := exec.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	waitFor(t, 30*time.Second, "Prometheus scraping the observer", func() bool {
		res, err := query(addr, `up{job="observer"} == 1`)
		return err == nil && len(res) == 1
	})
	return addr
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is the log's last 60 lines.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}
