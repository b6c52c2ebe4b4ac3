package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/latency"
)

// loop is the same syscall loop in both containers: shell builtins only, so
// every iteration is open/write/close and no fork.
const loop = "while :; do echo x > /dev/null; done"

// loopCPUs caps each loop's container (a CFS quota): unbounded, two loops
// on the guest's one TCG vCPU starved dockerd, Prometheus and the observer,
// and the scenario took 100 s. A quarter CPU each still makes thousands of
// syscalls a second.
const loopCPUs = "0.25"

// seccomp: one container under Docker's default profile, one unconfined.
// `observer seccomp-report` and Prometheus show the filter's time and share
// for the first and none for the second.
func seccomp(ctx context.Context, n *Node, t *T) error {
	confined, unconfined := "st-seccomp-default", "st-seccomp-unconfined"
	// Both at once: under TCG each `docker run` takes half a minute.
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errs[0] = Docker(ctx, "run", "-d", "--cpus", loopCPUs, "--name", confined, Image, "sh", "-c", loop)
	})
	wg.Go(func() {
		_, errs[1] = Docker(ctx, "run", "-d", "--cpus", loopCPUs, "--name", unconfined, "--security-opt", "seccomp=unconfined", Image, "sh", "-c", loop)
	})
	wg.Wait()
	defer Docker(context.Background(), "rm", "-f", confined, unconfined)
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	cid, err := ContainerID(ctx, confined)
	if err != nil {
		return err
	}
	uid, err := ContainerID(ctx, unconfined)
	if err != nil {
		return err
	}
	t.Logf("containers %s (default profile) %s, %s (unconfined) %s", confined, Short(cid), unconfined, Short(uid))
	time.Sleep(5 * time.Second)

	out, err := Sh(ctx, "observer", "seccomp-report", "--interval", "4s")
	if err != nil {
		return err
	}
	t.Logf("observer seccomp-report:\n%s", out)
	// A container can have rows in two modes (runc's syscalls before the
	// profile count as none): the filter row of the first, and no filter row
	// of the second.
	crow, err := reportRow(out, Short(cid), "filter")
	if err != nil {
		return err
	}
	if row, err := reportRow(out, Short(uid), "filter"); err == nil {
		return fmt.Errorf("seccomp-report shows a filter row for the unconfined container: %q", row)
	}
	urow, err := reportRow(out, Short(uid), "none")
	if err != nil {
		return err
	}
	// Columns: CONTAINER NAME SECCOMP FILTERS SYSCALLS/S P50 P99 FILTER/SYSCALL FILTER SHARE
	if len(crow) != 9 || crow[2] != "filter" || crow[3] == "-" || crow[7] == "-" || !strings.HasSuffix(crow[8], "%") {
		return fmt.Errorf("seccomp-report row of the default-profile container: %q, want seccomp filter with filters, filter time and share", crow)
	}
	// No filter runs, measured: filter time 0 and share 0.0% ("-" would mean
	// the seccomp sensor is not measuring).
	if len(urow) != 9 || urow[2] != "none" || urow[3] != "-" || urow[7] != "0" || urow[8] != "0.0%" {
		return fmt.Errorf("seccomp-report row of the unconfined container: %q, want seccomp none, no filters, filter time 0 and share 0.0%%", urow)
	}

	// The same through the observer's /latency, for the figures.
	var rep latency.Report
	if err := n.Get(ctx, "/latency", &rep); err != nil {
		return err
	}
	perCall := math.NaN()
	for _, r := range latency.Compare(nil, rep).Rows {
		if r.Container == cid && r.Mode == "filter" {
			perCall = r.FilterPerCall
		}
	}
	if math.IsNaN(perCall) {
		return fmt.Errorf("/latency: no filter time for container %s", Short(cid))
	}

	cq := fmt.Sprintf(`observer_seccomp_filter_duration_seconds_count{container=%q}`, Short(cid))
	if _, err := n.WaitQuery(ctx, cq, 30*time.Second, func(v float64) bool { return v > 0 }); err != nil {
		return err
	}
	shareQ := fmt.Sprintf(`sum(rate(observer_seccomp_filter_duration_seconds_sum{container=%q}[20s])) / (sum(rate(observer_seccomp_filter_duration_seconds_sum{container=%q}[20s])) + sum(rate(observer_syscall_duration_seconds_sum{container=%q}[20s])))`, Short(cid), Short(cid), Short(cid))
	promShare, err := n.WaitQuery(ctx, shareQ, 30*time.Second, func(v float64) bool { return v > 0 && v < 1 })
	if err != nil {
		return err
	}
	uq := fmt.Sprintf(`observer_seccomp_filter_duration_seconds_count{container=%q}`, Short(uid))
	if ss, err := n.Query(ctx, uq); err != nil {
		return err
	} else if len(ss) != 0 && ss[0].Value != 0 {
		return fmt.Errorf("PromQL %s: %v, want no filter time for the unconfined container", uq, ss[0].Value)
	}
	// The unconfined container's syscalls are there, under seccomp="none".
	nq := fmt.Sprintf(`observer_syscalls_total{container=%q,seccomp="none"}`, Short(uid))
	if _, err := n.WaitQuery(ctx, nq, 30*time.Second, func(v float64) bool { return v > 0 }); err != nil {
		return err
	}
	t.Fact("seccomp-report: default profile seccomp=filter with %s filter(s), filter time and share; unconfined seccomp=none, filter time 0, share 0.0%%; Prometheus: filter histogram for the first only", crow[3])
	t.Measure("filter share %s (report), %.1f%% (PromQL, 20s); %s per filtered syscall", crow[8], 100*promShare.Value, dur(perCall))
	return nil
}

// reportRow finds a container's row in one seccomp mode in seccomp-report's table.
func reportRow(out, short, mode string) ([]string, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == short && f[2] == mode {
			return f, nil
		}
	}
	return nil, fmt.Errorf("observer seccomp-report has no %s row for container %s", mode, short)
}
