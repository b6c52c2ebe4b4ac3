package latency

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/sensor"
	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/tracer"
)

// TestDockerSeccompModes runs two busybox containers under a private dockerd,
// one with Docker's default seccomp profile and one unconfined, both doing the
// same 200000 one-byte read/write pairs, and checks what the daemon's latency
// component reports: container attribution, seccomp mode and counts, and the
// seccomp-report table.
func TestDockerSeccompModes(t *testing.T) {
	testenv.RequireRoot(t)
	d := testenv.StartDockerd(t)
	image := d.ImportBusybox(t)
	// Sampled as the daemon runs it by default: counts exact, one in N timed.
	lat, _ := startLatency(t, d.Host, tracer.Options{Sensors: []string{tracer.SensorLatency},
		Latency: tracer.LatencyOptions{SampleEvery: sensor.DefaultSyscallSampleEvery}})

	const pairs = 200000
	script := "dd if=/dev/zero of=/dev/null bs=1 count=200000 2>/dev/null; sleep 600"
	run := func(name string, opts ...string) string {
		args := append([]string{"run", "-d", "--name", name}, opts...)
		out, err := d.CLI(append(args, image, "sh", "-c", script)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	def := run("seccomp-default")
	unconfined := run("seccomp-unconfined", "--security-opt", "seccomp=unconfined")

	find := func(rep Report, id string) *ContainerReport {
		for i := range rep.Containers {
			if rep.Containers[i].ID == id {
				return &rep.Containers[i]
			}
		}
		return nil
	}
	count := func(c *ContainerReport, mode string) uint64 {
		if c == nil {
			return 0
		}
		for _, m := range c.Seccomp {
			if m.Mode == mode {
				return m.Calls
			}
		}
		return 0
	}
	var rep Report
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep = lat.Report()
		if count(find(rep, def), "filter") >= 2*pairs && count(find(rep, unconfined), "none") >= 2*pairs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers not measured in time: default %+v, unconfined %+v", find(rep, def), find(rep, unconfined))
		}
		time.Sleep(200 * time.Millisecond)
	}
	dc, uc := find(rep, def), find(rep, unconfined)
	if dc.Name != "seccomp-default" && dc.Name != "" {
		t.Errorf("default container name %q", dc.Name)
	}
	if n := count(dc, "none"); n > count(dc, "filter")/100 {
		t.Errorf("default container: %d syscalls without seccomp, want (almost) all under filter", n)
	}
	if n := count(uc, "filter"); n != 0 {
		t.Errorf("unconfined container: %d syscalls under a seccomp filter, want 0", n)
	}
	t.Logf("default: %d filtered syscalls; unconfined: %d unfiltered", count(dc, "filter"), count(uc, "none"))
	// Timed: one in N of them, scaled back up by N, so about the count.
	for _, c := range []struct {
		r    *ContainerReport
		mode string
	}{{dc, "filter"}, {uc, "none"}} {
		for _, m := range c.r.Seccomp {
			if m.Mode == c.mode && (m.Hist.Count() < m.Calls/2 || m.Hist.Count() > m.Calls*2) {
				t.Errorf("%s: %d syscalls, histogram estimates %d (1 in %d timed)", c.r.Name, m.Calls, m.Hist.Count(), rep.SampleEvery)
			}
		}
	}

	// The seccomp-report table from the JSON endpoint, as the subcommand reads
	// it: both containers, their modes.
	srv := httptest.NewServer(lat.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var served Report
	err = json.NewDecoder(resp.Body).Decode(&served)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET /latency: %v", err)
	}
	var out bytes.Buffer
	WriteReport(&out, Compare(nil, served))
	t.Logf("seccomp-report:\n%s", out.String())
	for _, want := range []string{def[:12], unconfined[:12]} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks container %s", want)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(line, def[:12]) && strings.Contains(line, " none "):
		case strings.Contains(line, def[:12]) && !strings.Contains(line, " filter "):
			t.Errorf("default container row without filter mode: %q", line)
		case strings.Contains(line, unconfined[:12]) && !strings.Contains(line, " none "):
			t.Errorf("unconfined container row not in mode none: %q", line)
		}
	}
}
