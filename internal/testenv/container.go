package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ContainerOptions shapes the container before it starts.
type ContainerOptions struct {
	// Lower adds files to the overlay's lower layer: relative path -> content;
	// a path ending in "/" creates a directory. Staging in the lower layer is
	// what makes a later rename inside the container hit overlayfs' EXDEV and
	// copy-up paths.
	Lower map[string]string
	// Prepare, when set, runs on the lower layer directory after busybox and
	// Lower are in place, for staging that a map cannot express.
	Prepare func(lower string) error
	// Env is added to the process environment (PATH=/bin is always set).
	Env []string
	// MountOptions are added to the overlay mount options (e.g. "metacopy=on").
	MountOptions []string
	// UpperSize, when set, puts the upper and work directories on a tmpfs of
	// that many bytes, so that copy-ups can run out of space.
	UpperSize int64
	// Seccomp runs the container under a seccomp profile that allows all but a
	// few syscalls (dockerLikeSeccomp); without it the container has none.
	Seccomp bool
}

// Container is a runc bundle on an overlay root, ready to run commands.
type Container struct {
	ID     string // 64-hex id, as Docker would assign
	Bundle string // directory holding config.json
	Lower  string // overlay lower layer (busybox rootfs)
	Upper  string // overlay upper layer: copy-ups land here
	Merged string // overlay mount point, the container's root

	runcRoot   string
	env        []string
	layerMount string // tmpfs holding upper and work, when ContainerOptions.UpperSize is set
	seccomp    bool   // run under dockerLikeSeccomp
}

// RunResult is what one container run produced.
type RunResult struct {
	ID       string
	ExitCode int
	Output   string // stdout and stderr combined
}

// NewContainer builds a busybox rootfs, mounts an overlay over it and writes
// the bundle. Everything is removed with t.Cleanup. It needs root and runc.
func NewContainer(t testing.TB, opts ContainerOptions) *Container {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skipf("skipping: runc not found in PATH: %v", err)
	}
	c, err := newContainer(t.TempDir(), opts)
	if c != nil {
		// Registered before checking err so a half-built container is undone too.
		t.Cleanup(func() {
			if err := c.cleanup(); err != nil {
				t.Errorf("container %s cleanup: %v", c.ID[:12], err)
			}
		})
	}
	if err != nil {
		t.Fatalf("creating container: %v", err)
	}
	return c
}

func newContainer(dir string, opts ContainerOptions) (*Container, error) {
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:       id,
		Bundle:   filepath.Join(dir, "bundle"),
		Lower:    filepath.Join(dir, "lower"),
		Upper:    filepath.Join(dir, "upper"),
		Merged:   filepath.Join(dir, "bundle", "rootfs"),
		runcRoot: filepath.Join(dir, "runc"),
		env:      append([]string{"PATH=/bin", "HOME=/root"}, opts.Env...),
		seccomp:  opts.Seccomp,
	}
	work := filepath.Join(dir, "work")
	for _, d := range []string{c.Lower, c.Upper, work, c.Merged, c.runcRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if opts.UpperSize > 0 {
		// upper and work must share one filesystem: mount it on their parent.
		layer := filepath.Join(dir, "layer")
		if err := os.MkdirAll(layer, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", layer, err)
		}
		if err := unix.Mount("tmpfs", layer, "tmpfs", 0, fmt.Sprintf("size=%d", opts.UpperSize)); err != nil {
			return nil, fmt.Errorf("mounting a %d-byte tmpfs for the upper layer: %w", opts.UpperSize, err)
		}
		c.layerMount = layer
		c.Upper, work = filepath.Join(layer, "upper"), filepath.Join(layer, "work")
		for _, d := range []string{c.Upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return c, fmt.Errorf("creating %s: %w", d, err)
			}
		}
	}
	if err := BuildBusyboxRootfs(c.Lower); err != nil {
		return c, fmt.Errorf("building rootfs: %w", err)
	}
	if err := writeTree(c.Lower, opts.Lower); err != nil {
		return c, err
	}
	if opts.Prepare != nil {
		if err := opts.Prepare(c.Lower); err != nil {
			return c, fmt.Errorf("prepare hook: %w", err)
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.Lower, c.Upper, work)
	for _, o := range opts.MountOptions {
		data += "," + o
	}
	if err := unix.Mount("overlay", c.Merged, "overlay", 0, data); err != nil {
		return c, fmt.Errorf("mounting overlay on %s (is the overlay module loaded?): %w", c.Merged, err)
	}
	return c, nil
}

// Run runs `sh -c script` in a fresh container and waits for it. The error is
// only for failures to run runc at all; a non-zero exit is in ExitCode.
func (c *Container) Run(ctx context.Context, script string) (RunResult, error) {
	spec := newSpec(c.ID, c.Merged, []string{"/bin/sh", "-c", script}, c.env)
	if c.seccomp {
		spec.Linux.Seccomp = dockerLikeSeccomp()
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return RunResult{}, fmt.Errorf("encoding config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644); err != nil {
		return RunResult{}, fmt.Errorf("writing config.json: %w", err)
	}
	cmd := exec.CommandContext(ctx, "runc", "--root", c.runcRoot, "run", "--bundle", c.Bundle, c.ID)
	out, err := cmd.CombinedOutput()
	res := RunResult{ID: c.ID, Output: string(out)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	default:
		return res, fmt.Errorf("running runc: %w", err)
	}
	return res, nil
}

// RunContainer is the one-call form: a new container running script.
func RunContainer(t testing.TB, opts ContainerOptions, script string) RunResult {
	t.Helper()
	c := NewContainer(t, opts)
	res, err := c.Run(context.Background(), script)
	if err != nil {
		t.Fatalf("container %s: %v", c.ID[:12], err)
	}
	return res
}

// cleanup deletes the runc state (a no-op after a normal exit) and unmounts
// the overlay; t.TempDir removes the files afterwards.
func (c *Container) cleanup() error {
	var errs []error
	if out, err := exec.Command("runc", "--root", c.runcRoot, "delete", "-f", c.ID).CombinedOutput(); err != nil {
		// runc says "does not exist" after a container ran to completion.
		if _, statErr := os.Stat(filepath.Join(c.runcRoot, c.ID)); statErr == nil {
			errs = append(errs, fmt.Errorf("runc delete: %v: %s", err, trimOutput(out)))
		}
	}
	if err := unix.Unmount(c.Merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("unmounting %s: %w", c.Merged, err))
	}
	if c.layerMount != "" {
		if err := unix.Unmount(c.layerMount, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", c.layerMount, err))
		}
	}
	return errors.Join(errs...)
}

func randomID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("container id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
