// Command benchevents (make bench-events, root) measures the event pipeline
// end to end: a storm of renames failing with EXDEV on a real overlay mount,
// at several rates and as one burst, against the real daemon binary writing
// --events FILE, with bpftrace printing the same events beside it in the same
// run as the peer. Per phase it prints what was produced, delivered to the
// file and lost (the kernel's ring-buffer losses plus the file subscriber's
// drops, which must add up to what was produced exactly), and the CPU each
// spent per event. It asserts nothing about time; it fails only when the
// accounting does not add up.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/tracer/tracefs"
)

func main() {
	bin := flag.String("observer", "bin/observer", "daemon binary (make build)")
	rates := flag.String("rates", "5000,20000,40000", "storm rates, events/s")
	dur := flag.Duration("duration", 10*time.Second, "length of each rate phase")
	burst := flag.Int("burst", 10000, "events in the back-to-back burst phase (0: none)")
	peer := flag.Bool("bpftrace", true, "run bpftrace beside the daemon")
	env := flag.String("env", "", "extra `NAME=VALUE` in the daemon's environment (e.g. GOMEMLIMIT=off)")
	lat := flag.Int("latency", 1000, "events at 100/s whose kernel → /events latency is measured (0: none)")
	flag.Parse()
	if err := run(*bin, *rates, *dur, *burst, *peer, *env, *lat); err != nil {
		fmt.Fprintln(os.Stderr, "bench-events:", err)
		os.Exit(1)
	}
}

type phase struct {
	name  string
	rate  int // 0: back to back
	count int
}

type proc struct {
	cmd *exec.Cmd
	out string // its event output
}

func run(bin, rateList string, dur time.Duration, burst int, peer bool, env string, latN int) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (BPF, overlay mount)")
	}
	var phases []phase
	for _, f := range strings.Split(rateList, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return fmt.Errorf("bad rate %q", f)
		}
		phases = append(phases, phase{fmt.Sprintf("%d/s for %v", r, dur), r, int(float64(r) * dur.Seconds())})
	}
	if burst > 0 {
		phases = append(phases, phase{fmt.Sprintf("burst of %d", burst), 0, burst})
	}
	dir, err := os.MkdirTemp("", "bench-events")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	merged, err := mountOverlay(dir)
	if err != nil {
		return err
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &proc{out: filepath.Join(dir, "events.jsonl")}
	sock := filepath.Join(dir, "observer.sock") // /events is served only here
	obs.cmd = exec.CommandContext(ctx, bin, "--events", obs.out, "--listen", addr, "--socket", sock,
		"--docker-host", "none", "--capture-dir", filepath.Join(dir, "captures"))
	obs.cmd.Stderr = mustCreate(filepath.Join(dir, "observer.log"))
	if env != "" {
		obs.cmd.Env = append(os.Environ(), env)
	}
	if err := obs.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	defer obs.cmd.Process.Signal(unix.SIGTERM)
	if err := waitReady(addr); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "observer.log"))
		return fmt.Errorf("%w; daemon log:\n%s", err, log)
	}
	var bt *proc
	if peer {
		if err := prepareBpftrace(); err != nil {
			return err
		}
		if bt, err = startBpftrace(ctx, dir); err != nil {
			return err
		}
	}

	// Each phase renames to its own new path: bpftrace's output is fully
	// buffered (as the daemon's file is), so its lines are counted by phase
	// once it has exited and flushed.
	oldPath := filepath.Join(merged, "dir")
	phasePath := func(i int) string { return filepath.Join(merged, fmt.Sprintf("moved-%d", i)) }
	pid := os.Getpid()
	fmt.Printf("rename-EXDEV storm on an overlay mount, %s with its defaults and --events FILE (kernel %s, %d CPUs)\n\n",
		bin, release(), runtime.NumCPU())
	fmt.Println("| phase | produced | delivered | lost in kernel | dropped (file) | observer µs CPU/event | observer RSS MiB (peak) | observer context switches/1k events | bpftrace delivered | bpftrace µs CPU/event | observer / bpftrace CPU |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	obsLines := &lineCounter{path: obs.out, pid: pid}
	type result struct {
		row        string
		cpu, btCPU time.Duration
		delivered  int
	}
	results := make([]result, len(phases))
	var bad []string
	for i, ph := range phases {
		newPath := phasePath(i)
		obsLines.match = []byte(`"new_path":"` + newPath + `"`)
		m0, err := scrape(addr)
		if err != nil {
			return err
		}
		d0, err := obsLines.count()
		if err != nil {
			return err
		}
		c0 := cpuTime(obs.cmd.Process.Pid)
		s0 := ctxSwitches(obs.cmd.Process.Pid)
		var bc0 time.Duration
		if bt != nil {
			bc0 = cpuTime(bt.cmd.Process.Pid)
		}

		produced, err := storm(oldPath, newPath, ph.rate, ph.count)
		if err != nil {
			return err
		}
		// Wait until the file stops growing, then read the counters once:
		// scraping during the phase would add to the daemon's CPU.
		d1 := d0
		for still := 0; still < 5; time.Sleep(100 * time.Millisecond) {
			n, err := obsLines.count()
			if err != nil {
				return err
			}
			if n == d1 && n-d0 >= produced {
				break
			}
			if n == d1 {
				still++
			} else {
				still = 0
			}
			d1 = n
		}
		m1, err := scrape(addr)
		if err != nil {
			return err
		}
		delivered, lost, dropped := d1-d0, int(m1.lost-m0.lost), int(m1.fileDropped-m0.fileDropped)
		cpu := cpuTime(obs.cmd.Process.Pid) - c0
		switches := ctxSwitches(obs.cmd.Process.Pid) - s0
		rss, peak := memory(obs.cmd.Process.Pid)
		row := fmt.Sprintf("| %s | %d | %d | %d | %d | %.2f | %d (%d) | %.0f |", ph.name, produced, delivered, lost, dropped, perEvent(cpu, delivered), rss>>20, peak>>20,
			float64(switches)*1000/float64(max(delivered, 1)))
		results[i] = result{row: row, cpu: cpu, delivered: delivered}
		if bt != nil {
			time.Sleep(200 * time.Millisecond)
			results[i].btCPU = cpuTime(bt.cmd.Process.Pid) - bc0
		}
		if produced != delivered+lost+dropped {
			bad = append(bad, fmt.Sprintf("%s: produced %d != delivered %d + lost %d + dropped %d", ph.name, produced, delivered, lost, dropped))
		}
		time.Sleep(time.Second)
	}
	var btCounts []int
	if bt != nil {
		bt.cmd.Process.Signal(unix.SIGINT) // exits flushing its output
		bt.cmd.Wait()
		for i := range phases {
			c := &lineCounter{path: bt.out, pid: pid, match: []byte(`"new":"` + phasePath(i) + `"`)}
			n, err := c.count()
			if err != nil {
				return err
			}
			btCounts = append(btCounts, n)
		}
	}
	for i, r := range results {
		if bt == nil {
			fmt.Println(r.row + " | | |")
			continue
		}
		fmt.Printf("%s %d | %.2f | %.2f |\n", r.row, btCounts[i], perEvent(r.btCPU, btCounts[i]), perEvent(r.cpu, r.delivered)/perEvent(r.btCPU, btCounts[i]))
	}
	if latN > 0 {
		q, err := latency(sock, oldPath, filepath.Join(merged, "lat"), latN)
		if err != nil {
			return err
		}
		fmt.Printf("\nkernel → /events client latency, %d events at 100/s (from just before each rename to the client's read of its line): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			latN, q(0.5), q(0.99), q(1))
	}
	fmt.Println("\nCPU is the process's user+system time over the phase and its drain (/proc/PID/stat); the BPF programs' own time is charged to the renaming thread, for both. Context switches are the daemon's threads' voluntary and involuntary ones (/proc/PID/task/*/status): each is a wakeup or a preemption.")
	if len(bad) > 0 {
		return errors.New("accounting does not add up:\n" + strings.Join(bad, "\n"))
	}
	return nil
}

// latency renames n times at 100/s, each to its own new path, with a client
// of the daemon's /events (on its control socket) reading the events, and returns the quantiles of
// the time from just before each rename to the client's read of its line.
func latency(sock, oldPath, newPrefix string, n int) (func(float64) float64, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://observer/events?type=rename_exdev")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /events on %s: %s", sock, resp.Status)
	}
	sent, recv := make([]time.Time, n), make([]time.Time, n)
	got := make(chan int, 1)
	go func() {
		seen := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for seen < n && sc.Scan() {
			now := time.Now()
			line := sc.Bytes()
			i := bytes.Index(line, []byte(`"new_path":"`+newPrefix+"-"))
			if i < 0 {
				continue
			}
			rest := line[i+len(`"new_path":"`+newPrefix+"-"):]
			k, err := strconv.Atoi(string(rest[:bytes.IndexByte(rest, '"')]))
			if err != nil || k < 0 || k >= n || !recv[k].IsZero() {
				continue
			}
			recv[k] = now
			seen++
		}
		got <- seen
	}()
	time.Sleep(200 * time.Millisecond) // the stream subscribed
	for i := range n {
		time.Sleep(10 * time.Millisecond)
		sent[i] = time.Now()
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, fmt.Sprintf("%s-%d", newPrefix, i), 0); err != unix.EXDEV {
			return nil, fmt.Errorf("renameat2 on the overlay: %v, want EXDEV", err)
		}
	}
	var seen int
	select {
	case seen = <-got:
	case <-time.After(5 * time.Second):
		resp.Body.Close()
		seen = <-got
	}
	if seen < n {
		return nil, fmt.Errorf("latency phase: the /events client read %d of %d events", seen, n)
	}
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = recv[i].Sub(sent[i])
	}
	slices.Sort(lat)
	return func(q float64) float64 {
		return float64(lat[min(int(q*float64(n)), n-1)].Microseconds()) / 1000
	}, nil
}

// storm makes count renames fail with EXDEV, at rate per second (paced in
// 1 ms slices), or back to back when rate is 0. It returns how many failed
// with EXDEV: each is one event.
func storm(oldPath, newPath string, rate, count int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for i := range count {
		if rate > 0 && i%max(rate/1000, 1) == 0 {
			due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != unix.EXDEV {
			return i, fmt.Errorf("renameat2 on the overlay: %v, want EXDEV", err)
		}
	}
	return count, nil
}

func perEvent(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// bpftrace prints the same events: pid, tid, comm and both paths of each
// renameat2 that failed with EXDEV.
const bpftraceProg = `
tracepoint:syscalls:sys_enter_renameat2 { @old[tid] = args->oldname; @new[tid] = args->newname; }
tracepoint:syscalls:sys_exit_renameat2 /@old[tid]/ {
	if (args->ret == -18) { printf("{\"pid\":%d,\"tid\":%d,\"comm\":\"%s\",\"old\":\"%s\",\"new\":\"%s\"}\n", pid, tid, comm, str(@old[tid]), str(@new[tid])); }
	delete(@old[tid]); delete(@new[tid]);
}
`

// prepareBpftrace gives bpftrace what a fresh machine may lack, as the daemon
// gives itself: a tracefs for its tracepoints ("tracepoint not found" without
// one), and RLIMIT_MEMLOCK raised as far as this process may, which the child
// inherits (kernels before 5.11 charge BPF maps to it).
func prepareBpftrace() error {
	mounted, err := tracefs.Ensure()
	if err != nil {
		return fmt.Errorf("tracefs for bpftrace's tracepoints: %w", err)
	}
	if mounted {
		fmt.Fprintf(os.Stderr, "bench-events: tracefs was not mounted: mounted it at %s for bpftrace\n", tracefs.Dir)
	}
	return raiseMemlock()
}

// raiseMemlock lifts RLIMIT_MEMLOCK, or without CAP_SYS_RESOURCE (a container
// may lack it, even as root) raises the soft limit to the hard one. bpftrace
// then still warns that it could not set the limit; since 5.11 the kernel
// charges BPF maps to the memory cgroup instead, so its maps load regardless.
func raiseMemlock() error {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err == nil {
		return nil
	} else if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("lift RLIMIT_MEMLOCK for bpftrace: %w", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_MEMLOCK: %w", err)
	}
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Errorf("raise RLIMIT_MEMLOCK to its hard limit for bpftrace: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench-events: RLIMIT_MEMLOCK stays at %d KiB (no CAP_SYS_RESOURCE to lift it); bpftrace may warn, its maps need it only before Linux 5.11\n", lim.Max>>10)
	return nil
}

func startBpftrace(ctx context.Context, dir string) (*proc, error) {
	p := &proc{out: filepath.Join(dir, "bpftrace.out")}
	p.cmd = exec.CommandContext(ctx, "bpftrace", "-B", "full", "-e", bpftraceProg)
	p.cmd.Stdout = mustCreate(p.out)
	p.cmd.Stderr = mustCreate(filepath.Join(dir, "bpftrace.log"))
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bpftrace (make deps installs it): %w", err)
	}
	// Its output is buffered, so readiness is its programs loaded (bpf-prog
	// descriptors), then a second for the attach that follows.
	for range 300 {
		if progFDs(p.cmd.Process.Pid) >= 2 {
			time.Sleep(time.Second)
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "bpftrace.log"))
	return nil, fmt.Errorf("bpftrace not ready within 30s:\n%s", log)
}

func progFDs(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "anon_inode:bpf-prog" {
			n++
		}
	}
	return n
}

func mustCreate(path string) *os.File {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	return f
}

func mountOverlay(base string) (string, error) {
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{filepath.Join(lower, "dir"), upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	// redirect_dir=off: directory renames fail with EXDEV, as on Docker's overlay2.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay: %w", err)
	}
	return merged, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady waits until the rename sensor is attached and reading.
func waitReady(addr string) error {
	for range 300 {
		if m, err := scrape(addr); err == nil && m.renameAttached {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the daemon's rename sensor did not attach within 30s")
}

type metrics struct {
	lost, fileDropped float64
	renameAttached    bool
}

func scrape(addr string) (metrics, error) {
	var m metrics
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch {
		case name == `observer_events_lost_total{sensor="rename"}`:
			m.lost = v
		case name == `observer_subscriber_dropped_events_total{subscriber="file"}`:
			m.fileDropped = v
		case strings.HasPrefix(name, `observer_sensor_info{`) && strings.Contains(name, `sensor="rename"`) && !strings.Contains(name, `mode="unavailable"`):
			m.renameAttached = true
		}
	}
	return m, sc.Err()
}

// lineCounter counts the lines of a growing file that are this process's
// rename events, reading only what was appended since the last count.
type lineCounter struct {
	path    string
	pid     int
	match   []byte // the line must contain it too
	off     int64
	partial []byte
	n       int
}

func (c *lineCounter) count() (int, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return c.n, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, c.off, 1<<62))
	if err != nil {
		return c.n, err
	}
	c.off += int64(len(b))
	b = append(c.partial, b...)
	pidField := []byte(fmt.Sprintf(`"pid":%d,`, c.pid))
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := b[:i]
		if bytes.Contains(line, pidField) && bytes.Contains(line, c.match) {
			c.n++
		}
		b = b[i+1:]
	}
	c.partial = append([]byte(nil), b...)
	return c.n, nil
}

// cpuTime is a process's user+system CPU time so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// ctxSwitches is how often a process's threads have been switched out so far,
// voluntarily (blocked: each is a later wakeup) or not. Threads that exited are
// not counted; the Go runtime keeps its threads.
func ctxSwitches(pid int) int64 {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, p := range dirs {
		b, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}

// memory is a process's resident set now and at its peak (VmRSS, VmHWM).
func memory(pid int) (rss, peak int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

func release() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}
