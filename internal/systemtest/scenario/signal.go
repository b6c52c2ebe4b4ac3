package scenario

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The SIGPIPE scenario's watched daemon: a copy of yes(1) under a name the
// guest's --watch-comm lists (testdata/systemtest/observer.default).
const (
	pipeDaemon  = "sigpipe-daemon"
	captureDir  = "/var/lib/observer/captures"
	journalUnit = "systemd-journald"
)

// sigpipe: first what a journald restart does to dockerd while it logs
// (reported as it happened), then a watched daemon whose stdout reader dies:
// signal then daemon_exit, an incident capture, and `observer report` on it.
func sigpipe(ctx context.Context, n *Node, t *T) error {
	if err := journaldRestart(ctx, n, t); err != nil {
		return err
	}
	return deadReader(ctx, n, t)
}

func journaldRestart(ctx context.Context, n *Node, t *T) error {
	before, err := mainPID(ctx, "docker")
	if err != nil {
		return err
	}
	mark := n.Mark()
	// dockerd runs with debug logging (testdata/systemtest/daemon.json): every
	// API call is a line on its stdout, which is a stream to journald.
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		calls := 0
		for {
			select {
			case <-stop:
				done <- calls
				return
			default:
			}
			Docker(ctx, "ps", "-q")
			calls++
		}
	}()
	time.Sleep(2 * time.Second)
	if _, err := Sh(ctx, "systemctl", "restart", journalUnit); err != nil {
		close(stop)
		<-done
		return err
	}
	time.Sleep(4 * time.Second)
	close(stop)
	calls := <-done
	time.Sleep(2 * time.Second) // let the last events arrive
	after, _ := mainPID(ctx, "docker")
	sigs := n.Events(mark, func(e Event) bool {
		return e.Str("type") == "signal" && e.Str("target_comm") == "dockerd"
	})
	exits := n.Events(mark, func(e Event) bool {
		return e.Str("type") == "daemon_exit" && int(e.Num("pid")) == before
	})
	t.Logf("journald restarted during %d docker API calls; dockerd pid %d before, %d after; %d signal and %d daemon_exit events", calls, before, after, len(sigs), len(exits))
	var what []string
	for _, e := range sigs {
		what = append(what, fmt.Sprintf("%s to dockerd (disposition %s, %s)", e.Str("signal"), e.Str("disposition"), e.Str("result")))
	}
	if len(sigs) == 0 {
		what = append(what, "no signal to dockerd")
	}
	switch {
	case after == before:
		what = append(what, "dockerd kept running")
		if len(exits) > 0 {
			return fmt.Errorf("daemon_exit reported for dockerd pid %d, which still runs", before)
		}
	default:
		if len(exits) == 0 {
			return fmt.Errorf("dockerd pid %d is gone (now %d) but no daemon_exit was reported", before, after)
		}
		what = append(what, fmt.Sprintf("dockerd exited (signal %q, code %s)", exits[0].Str("signal"), exits[0].Str("exit_code")))
		if err := waitDocker(ctx); err != nil {
			return err
		}
	}
	t.Fact("journald restart while dockerd logs: %s", strings.Join(what, ", "))
	return nil
}

func deadReader(ctx context.Context, n *Node, t *T) error {
	bin := filepath.Join("/usr/local/bin", pipeDaemon)
	if _, err := Sh(ctx, "cp", "/usr/bin/yes", bin); err != nil {
		return err
	}
	start := time.Now()
	mark := n.Mark()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	daemon := exec.Command(bin)
	daemon.Stdout = w
	reader := exec.Command("sleep", "600")
	reader.Stdin = r
	if err := daemon.Start(); err != nil {
		return err
	}
	if err := reader.Start(); err != nil {
		daemon.Process.Kill()
		return err
	}
	// Only the two children hold the pipe now.
	r.Close()
	w.Close()
	pid := daemon.Process.Pid
	t.Logf("%s pid %d writes into a pipe read by sleep pid %d", pipeDaemon, pid, reader.Process.Pid)
	time.Sleep(2 * time.Second)
	reader.Process.Kill()
	reader.Wait()
	daemon.Wait()
	ws, _ := daemon.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		return fmt.Errorf("%s ended with %v, want killed by SIGPIPE (its test is void)", pipeDaemon, daemon.ProcessState)
	}
	sig, ok := n.WaitEvent(mark, 30*time.Second, func(e Event) bool {
		return e.Str("type") == "signal" && int(e.Num("target_pid")) == pid && e.Str("signal") == "SIGPIPE"
	})
	if !ok {
		return fmt.Errorf("no SIGPIPE signal event for %s pid %d", pipeDaemon, pid)
	}
	t.Logf("event: %v", sig)
	if sig.Str("disposition") != "default" || sig.Str("target_comm") != pipeDaemon {
		return fmt.Errorf("signal event disposition %q target_comm %q, want default and %s", sig.Str("disposition"), sig.Str("target_comm"), pipeDaemon)
	}
	exit, ok := n.WaitEvent(mark, 30*time.Second, func(e Event) bool {
		return e.Str("type") == "daemon_exit" && int(e.Num("pid")) == pid
	})
	if !ok {
		return fmt.Errorf("no daemon_exit event for %s pid %d", pipeDaemon, pid)
	}
	t.Logf("event: %v", exit)
	if exit.Str("signal") != "SIGPIPE" {
		return fmt.Errorf("daemon_exit signal %q, want SIGPIPE", exit.Str("signal"))
	}
	// The incident rules capture it; find the capture whose report names it.
	file, report, err := findCapture(ctx, start, fmt.Sprint(pid))
	if err != nil {
		return err
	}
	t.Logf("observer report %s:\n%s", file, report)
	t.Fact("%s killed by SIGPIPE: signal (disposition default) then daemon_exit SIGPIPE; incident capture; `observer report` shows both", pipeDaemon)
	return nil
}

// findCapture waits for an incident capture written after start whose
// `observer report` names pid, SIGPIPE and the daemon's exit.
func findCapture(ctx context.Context, start time.Time, pid string) (file, report string, err error) {
	deadline := time.Now().Add(90 * time.Second)
	read := 0
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(captureDir, "capture-*.jsonl.gz"))
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil || st.ModTime().Before(start) {
				continue
			}
			// A capture still being written is read again next round.
			out, err := Sh(ctx, "observer", "report", f)
			if err != nil {
				continue
			}
			read++
			if strings.Contains(out, pipeDaemon) && strings.Contains(out, "SIGPIPE") && strings.Contains(out, pid) {
				return f, out, nil
			}
		}
		time.Sleep(2 * time.Second)
	}
	return "", "", fmt.Errorf("no incident capture in %s after %s whose report names %s pid %s and SIGPIPE (%d reports read)", captureDir, start.Format(time.TimeOnly), pipeDaemon, pid, read)
}

func mainPID(ctx context.Context, unit string) (int, error) {
	out, err := Sh(ctx, "systemctl", "show", "--property", "MainPID", "--value", unit)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out)
}

// restartDocker restarts dockerd as an operator would and waits until it
// answers. The scenarios restart it many times: reset-failed first, so that
// docker.service's start limit (3 starts in 60 s) is not what fails a run.
// A failure carries dockerd's last journal lines: its exit status alone says
// nothing.
func restartDocker(ctx context.Context) error {
	Sh(ctx, "systemctl", "reset-failed", "docker.service", "docker.socket")
	_, err := Sh(ctx, "systemctl", "restart", "docker")
	if err == nil {
		err = waitDocker(ctx)
	}
	if err != nil {
		return fmt.Errorf("%w; dockerd's journal: %s", err, dockerJournal(ctx, 8))
	}
	return nil
}

// dockerJournal is dockerd's last n log messages of this boot, on one line.
func dockerJournal(ctx context.Context, n int) string {
	out, _ := Sh(ctx, "journalctl", "-u", "docker", "-b", "--no-pager", "-o", "cat", "-n", strconv.Itoa(n))
	return strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " | ")), " ")
}

func waitDocker(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := Docker(ctx, "info", "--format", "{{.ServerVersion}}")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not come back: %w", err)
		}
		time.Sleep(time.Second)
	}
}
