package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/residue"
)

// noRestart keeps systemd from restarting dockerd after the SIGKILL (Debian's
// docker.service says Restart=always), so the leak is seen before dockerd
// cleans up; /run: it lasts this boot only.
const noRestart = "/run/systemd/system/docker.service.d/systemtest-no-restart.conf"

// hostVeth is one veth in the host's network namespace (ip -j -d link).
type hostVeth struct {
	Ifindex     int    `json:"ifindex"`
	Name        string `json:"ifname"`
	LinkIndex   int    `json:"link_index"`
	LinkNetnsID *int   `json:"link_netnsid"` // nil: the peer is in this namespace too
	Link        string `json:"link"`         // the peer's name when it is in this namespace
}

func hostVeths(ctx context.Context) ([]hostVeth, error) {
	out, err := Sh(ctx, "ip", "-j", "-d", "link", "show", "type", "veth")
	if err != nil {
		return nil, err
	}
	var vs []hostVeth
	if out == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		return nil, fmt.Errorf("ip -j link: %w", err)
	}
	return vs, nil
}

// runningVeths are the host ends of running containers' eth0, found from
// containerd's tasks (dockerd is dead when this runs).
func runningVeths(ctx context.Context) (map[int]bool, int, error) {
	out, err := Sh(ctx, "ctr", "-n", "moby", "tasks", "ls")
	if err != nil {
		return nil, 0, err
	}
	in := map[int]bool{}
	running := 0
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "RUNNING" {
			continue
		}
		running++
		// In its namespace, eth0's link_index is the host end's ifindex.
		out, err := Sh(ctx, "nsenter", "-t", f[1], "-n", "ip", "-j", "-d", "link", "show", "type", "veth")
		if err != nil {
			continue // a container without a network (or one exiting now)
		}
		var vs []hostVeth
		if json.Unmarshal([]byte(out), &vs) == nil {
			for _, v := range vs {
				in[v.LinkIndex] = true
			}
		}
	}
	return in, running, nil
}

// vethResidue: dockerd SIGKILLed at random moments while containers start and
// stop; every veth left behind is residue with a reason and a removal
// command, no running container's veth is; after `systemctl restart docker`
// what dockerd cleaned up leaves the list.
func vethResidue(ctx context.Context, n *Node, t *T) error {
	if err := os.MkdirAll(filepath.Dir(noRestart), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(noRestart, []byte("[Service]\nRestart=no\n"), 0o644); err != nil {
		return err
	}
	defer func() {
		os.Remove(noRestart)
		Sh(context.Background(), "systemctl", "daemon-reload")
	}()
	if _, err := Sh(ctx, "systemctl", "daemon-reload"); err != nil {
		return err
	}
	keep := "st-veth-keep"
	if _, err := Docker(ctx, "run", "-d", "--restart", "always", "--name", keep, Image, "sleep", "3600"); err != nil {
		return err
	}
	defer Docker(context.Background(), "rm", "-f", keep)

	var leakedTotal, reportedTotal, cleanedTotal, kills int
	// Rounds until something leaked (at most three): each restart of dockerd
	// costs half a minute or more under TCG. A run where nothing leaked
	// checked nothing, so it fails rather than pass.
	for round := 1; round <= 3 && leakedTotal == 0; round++ {
		leaked, reported, cleaned, err := vethRound(ctx, t, round)
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		kills++
		leakedTotal += leaked
		reportedTotal += reported
		cleanedTotal += cleaned
	}
	if leakedTotal == 0 {
		return fmt.Errorf("%d SIGKILLs of dockerd while containers started left no veth behind: the residue report was not exercised", kills)
	}
	t.Fact("dockerd SIGKILLed during `docker run` loops: every veth left behind reported with reason and removal command, no running container's veth reported; after `systemctl restart docker` no veth dockerd removed stays listed")
	t.Measure("%d SIGKILLs: %d veths leaked, %d reported, %d removed by the restarted dockerd", kills, leakedTotal, reportedTotal, cleanedTotal)
	return nil
}

// vethCount is how many veth interfaces the host's namespace holds.
func vethCount() int {
	ents, _ := os.ReadDir("/sys/class/net")
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "veth") {
			n++
		}
	}
	return n
}

// killMoment waits until the `docker run` loops have more veths on the host
// than before they started (a container's network is being set up or in
// use), then a random 0 to 1 s more: the SIGKILL lands at a random moment
// of the window in which dockerd owns a veth, not before the first container
// got one (under TCG, the first `docker run` takes seconds). It gives up
// waiting after a minute.
func killMoment(ctx context.Context, baseline int) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(time.Minute)
	for vethCount() <= baseline {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	return time.Since(start), true
}

func vethRound(ctx context.Context, t *T, round int) (leaked, reported, cleaned int, err error) {
	baseline := vethCount()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	runs := make([]int, 2)
	for i := range runs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A second's run: a container that still runs when dockerd dies
				// keeps its network namespace, bind-mounted by dockerd, after it
				// exits, and with it the veth pair.
				if _, err := Docker(ctx, "run", "--rm", Image, "sleep", "1"); err != nil {
					// dockerd is gone: the loop ends with it.
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
				runs[i]++
			}
		})
	}
	delay, inWindow := killMoment(ctx, baseline)
	pid, err := mainPID(ctx, "docker")
	if err != nil || pid == 0 {
		close(stop)
		wg.Wait()
		return 0, 0, 0, fmt.Errorf("dockerd main pid: %v (pid %d)", err, pid)
	}
	_, killErr := Sh(ctx, "kill", "-KILL", strconv.Itoa(pid))
	close(stop)
	wg.Wait()
	if killErr != nil {
		return 0, 0, 0, killErr
	}
	t.Logf("round %d: dockerd pid %d SIGKILLed %s after the loops started (a new veth seen: %v; %d+%d containers run)", round, pid, delay.Round(time.Millisecond), inWindow, runs[0], runs[1])

	inUse, running, err := runningVeths(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	veths, err := hostVeths(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	byName := map[string]hostVeth{}
	for _, v := range veths {
		byName[v.Name] = v
	}
	// A leaked pair with both ends on the host counts once (either end may be
	// the one reported): keep the end with the lower ifindex.
	var leaks []hostVeth
	for _, v := range veths {
		if inUse[v.Ifindex] {
			continue
		}
		if peer, ok := byName[v.Link]; ok && v.LinkNetnsID == nil {
			v.LinkIndex = peer.Ifindex
			if peer.Ifindex < v.Ifindex {
				continue
			}
		}
		leaks = append(leaks, v)
	}
	t.Logf("round %d: %d running containers, %d host veths, %d in use, %d left behind: %v", round, running, len(veths), len(inUse), len(leaks), leaks)

	// Every leak is reported within the grace period and a few scans.
	deadline := time.Now().Add(guestGrace + 5*guestInterval + 10*time.Second)
	var rep residue.Report
	for {
		rep, err = residueReport(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		missing := unreported(leaks, rep.Residue)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("leaked veths not reported as residue: %v (residue: %+v)", missing, rep.Residue)
		}
		time.Sleep(time.Second)
	}
	for _, it := range rep.Residue {
		if it.Resource != "veth" {
			continue
		}
		if inUse[int(it.Ifindex)] {
			return 0, 0, 0, fmt.Errorf("veth %s of a running container reported as residue: %s (%s)", it.Name, it.Reason, observerView(ctx))
		}
		if it.Reason == "" || it.Remove == "" {
			return 0, 0, 0, fmt.Errorf("residue veth %s without reason or removal command", it.Name)
		}
		reported++
		t.Logf("round %d: residue %s: %s; remove: %s", round, it.Name, it.Reason, it.Remove)
	}

	// The operator restarts dockerd; what it cleans up must leave the list.
	if err := restartDocker(ctx); err != nil {
		return 0, 0, 0, err
	}
	deadline = time.Now().Add(guestGrace + 5*guestInterval + 10*time.Second)
	for {
		now, err := hostVeths(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		exists := map[string]bool{}
		for _, v := range now {
			exists[v.Name] = true
		}
		rep, err = residueReport(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		var stale []string
		for _, it := range rep.Residue {
			if it.Resource == "veth" && !exists[it.Name] {
				stale = append(stale, it.Name)
			}
		}
		if len(stale) == 0 {
			cleaned = 0
			for _, l := range leaks {
				if !exists[l.Name] {
					cleaned++
				}
			}
			t.Logf("round %d: after systemctl restart docker: %d of %d leaked veths removed by dockerd, %d residue items", round, cleaned, len(leaks), len(rep.Residue))
			return len(leaks), reported, cleaned, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("after systemctl restart docker, veths that no longer exist stay in the residue list: %v", stale)
		}
		time.Sleep(time.Second)
	}
}

// unreported lists the leaks no residue item names (by either end of a pair
// whose ends are both on the host).
func unreported(leaks []hostVeth, items []residue.Item) []string {
	var names []int
	for _, it := range items {
		if it.Resource == "veth" {
			names = append(names, int(it.Ifindex))
		}
	}
	var out []string
	for _, l := range leaks {
		if slices.Contains(names, l.Ifindex) || (l.LinkNetnsID == nil && slices.Contains(names, l.LinkIndex)) {
			continue
		}
		out = append(out, l.Name)
	}
	return out
}

// observerView is what the observer's unit can see of the running containers'
// namespaces, for a failure message: its capabilities and /proc/PID/ns/net
// of each running task as read inside the unit's sandbox.
func observerView(ctx context.Context) string {
	pid, err := mainPID(ctx, "observer")
	if err != nil {
		return err.Error()
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var caps []string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Cap") || strings.HasPrefix(line, "NoNewPrivs") || strings.HasPrefix(line, "Seccomp") {
			caps = append(caps, strings.Join(strings.Fields(line), " "))
		}
	}
	tasks, _ := Sh(ctx, "ctr", "-n", "moby", "tasks", "ls")
	var seen []string
	for _, line := range strings.Split(tasks, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		own, err1 := os.Readlink("/proc/" + f[1] + "/ns/net")
		in, err2 := Sh(ctx, "nsenter", "-t", strconv.Itoa(pid), "-m", "--", "readlink", "/proc/"+f[1]+"/ns/net")
		seen = append(seen, fmt.Sprintf("task %s: %s %v / in the unit's mount namespace: %s %v", f[1], own, err1, in, err2))
	}
	return fmt.Sprintf("observer pid %d %s; %s", pid, strings.Join(caps, ", "), strings.Join(seen, "; "))
}
