package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/systemtest"
)

// Image is the busybox image every scenario's containers run: built with
// `docker import` (there is no registry), with a 64 MiB file and a directory
// in its layer for the copy-up and EXDEV scenarios.
const Image = "systemtest:latest"

// T is one scenario's run: what it logs and what it established.
type T struct {
	r *systemtest.Result
	n *Node
}

// Logf records a step (in the result's log and as progress).
func (t *T) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.r.Log = append(t.r.Log, msg)
	t.n.Progress("  %s: %s", t.r.Scenario, msg)
}

// Fact adds to the facts the verdict table shows (stable across runs).
func (t *T) Fact(format string, args ...any) {
	t.r.Facts = join(t.r.Facts, fmt.Sprintf(format, args...))
}

// Measure adds a figure of this run.
func (t *T) Measure(format string, args ...any) {
	t.r.Measured = join(t.r.Measured, fmt.Sprintf(format, args...))
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// errUnavailable makes the scenario unavailable on this kernel, with a reason.
type errUnavailable struct{ reason string }

func (e errUnavailable) Error() string { return e.reason }

// Unavailable ends the scenario as one that cannot run here.
func Unavailable(format string, args ...any) error {
	return errUnavailable{fmt.Sprintf(format, args...)}
}

// Scenario is one failure reproduced on the node.
type Scenario struct {
	Name    string
	Sensors []string // must be attached, else the scenario is unavailable
	Run     func(ctx context.Context, n *Node, t *T) error
}

// All is every scenario, in systemtest.Scenarios order.
var All = []Scenario{
	{"copy_up", []string{"copyup", "cgroup"}, copyUp},
	{"rename_exdev", []string{"rename", "cgroup"}, renameExdev},
	{"seccomp", []string{"latency", "seccomp", "cgroup"}, seccomp},
	{"sigpipe", []string{"signal"}, sigpipe},
	{"restart", []string{"sem"}, restart},
	{"veth_residue", []string{"veth"}, vethResidue},
	{"sem_residue", []string{"sem"}, semResidue},
}

// RunAll runs every scenario in order, or those listed in only (comma
// separated), and prints one result line each; it reports whether none failed.
func RunAll(ctx context.Context, n *Node, only string) bool {
	ok := true
	for _, s := range All {
		if only != "" && !slices.Contains(strings.Split(only, ","), s.Name) {
			continue
		}
		r := systemtest.Result{Kernel: n.Kernel, Release: n.Release, Scenario: s.Name}
		start := time.Now()
		n.Progress("scenario %s", s.Name)
		t := &T{r: &r, n: n}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("scenario panicked: %v", p)
				}
			}()
			// Late attaches (overlay, veth loaded by dockerd) come within 10 s of the
			// module load; by now dockerd has loaded them.
			missing, err := n.Sensors(ctx, 20*time.Second, s.Sensors...)
			if err != nil {
				return err
			}
			if missing != "" {
				return Unavailable("%s", missing)
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			return s.Run(sctx, n, t)
		}()
		var un errUnavailable
		switch {
		case errors.As(err, &un):
			r.Status, r.Reason = systemtest.Unavailable, un.reason
		case err != nil:
			r.Status, r.Reason = systemtest.Fail, err.Error()
			ok = false
		default:
			r.Status = systemtest.Pass
		}
		r.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
		line, _ := json.Marshal(r)
		fmt.Fprintf(n.Out, "%s%s\n", systemtest.ResultPrefix, line)
	}
	return ok
}

// BuildImage imports the scenarios' image from the guest's busybox.
func BuildImage(ctx context.Context) error {
	root, err := os.MkdirTemp("", "image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if _, err := Sh(ctx, "cp", "/bin/busybox", filepath.Join(bin, "busybox")); err != nil {
		return err
	}
	list, err := Sh(ctx, "/bin/busybox", "--list")
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(list) {
		if applet != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{"data/dir/sub", "tmp", "proc", "sys", "dev", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	big, err := os.Create(filepath.Join(root, "data/big"))
	if err != nil {
		return err
	}
	// Real data, not a hole: what overlay copies up is what an image holds.
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	for range 64 {
		if _, err := big.Write(chunk); err != nil {
			big.Close()
			return err
		}
	}
	if err := big.Close(); err != nil {
		return err
	}
	for i := range 8 {
		if err := os.WriteFile(filepath.Join(root, "data/dir/sub", fmt.Sprintf("f%d", i)), chunk[:4096], 0o644); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", "tar -C \"$1\" -c . | docker import --change 'ENV PATH=/bin' - "+Image, "sh", root)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import: %w: %s", err, out)
	}
	return nil
}
