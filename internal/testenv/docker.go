package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Dockerd is a private Docker engine started for one test: its own data root,
// exec root, pidfile and socket, so it never touches a host's engine.
type Dockerd struct {
	Dir    string // holds data/, exec/, docker.sock, dockerd.log
	Socket string // unix socket path
	Host   string // unix://<Socket>, for DOCKER_HOST and -H
	cmd    *exec.Cmd
	waited chan error
	log    string
}

// RequireDocker skips the test when no Docker engine binary is installed
// (make deps installs docker.io).
func RequireDocker(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, bin := range []string{"dockerd", "containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: needs a Docker engine (%s not found; apt-get install docker.io)", bin)
		}
	}
	if dockerCLI() == "" {
		t.Skip("skipping: needs the docker CLI (apt-get install docker.io)")
	}
}

// dockerCLI prefers Debian's client, which matches Debian's engine.
func dockerCLI() string {
	for _, p := range []string{"/usr/bin/docker"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("docker")
	return p
}

// StartDockerd starts a private dockerd and stops it (SIGTERM, then SIGKILL)
// when the test ends. extraArgs are appended to its command line.
func StartDockerd(t testing.TB, extraArgs ...string) *Dockerd {
	t.Helper()
	RequireDocker(t)
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "obs-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Dir: dir, Socket: filepath.Join(dir, "docker.sock"), log: filepath.Join(dir, "dockerd.log")}
	d.Host = "unix://" + d.Socket
	if err := d.start(extraArgs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop(t)
		d.removeDir(t)
	})
	return d
}

func (d *Dockerd) start(extraArgs ...string) error {
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{
		"--data-root", filepath.Join(d.Dir, "data"),
		"--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", filepath.Join(d.Dir, "dockerd.pid"),
		"-H", d.Host,
		"--storage-driver", "overlay2",
	}, extraArgs...)
	d.cmd = exec.Command("dockerd", args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	d.waited = make(chan error, 1)
	go func(cmd *exec.Cmd, ch chan error) { ch <- cmd.Wait() }(d.cmd, d.waited)
	return d.waitReady(60 * time.Second)
}

func (d *Dockerd) waitReady(timeout time.Duration) error {
	client := d.HTTPClient()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.waited:
			d.waited <- err
			return fmt.Errorf("dockerd exited during start (%v): %s", err, d.LogTail())
		default:
		}
		resp, err := client.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("dockerd not ready after %v: %s", timeout, d.LogTail())
}

// Pid is dockerd's process id.
func (d *Dockerd) Pid() int { return d.cmd.Process.Pid }

// Kill sends SIGKILL to dockerd alone (not containerd or the shims), as an
// operator's `kill -9` would, and waits for it to die.
func (d *Dockerd) Kill(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.waited
	d.waited <- nil
}

// Restart starts dockerd again on the same directories after Kill or Stop.
func (d *Dockerd) Restart(t testing.TB, extraArgs ...string) {
	t.Helper()
	if err := d.start(extraArgs...); err != nil {
		t.Fatal(err)
	}
}

// Stop removes every container, then stops dockerd gracefully.
func (d *Dockerd) Stop(t testing.TB) {
	t.Helper()
	select {
	case err := <-d.waited:
		d.waited <- err
		// Killed earlier: its managed containerd may still run in its process group.
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		return
	default:
	}
	if out, err := d.CLI("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
		d.CLI(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.waited:
	case <-time.After(20 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.waited
	}
	d.waited <- nil
}

// removeDir unmounts anything left under the directory (overlay layers, shm,
// netns files) before deleting it.
func (d *Dockerd) removeDir(t testing.TB) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err == nil {
		lines := strings.Split(string(data), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			f := strings.Fields(lines[i])
			if len(f) > 1 && strings.HasPrefix(f[1], d.Dir) {
				syscall.Unmount(f[1], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Logf("cleaning %s: %v", d.Dir, err)
	}
}

// HTTPClient talks to the engine's API socket.
func (d *Dockerd) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", d.Socket)
		}},
	}
}

// CLI runs the docker client against this engine and returns its combined output.
func (d *Dockerd) CLI(args ...string) (string, error) {
	cmd := exec.Command(dockerCLI(), append([]string{"-H", d.Host}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// LogTail returns the end of dockerd's log, for failure messages.
func (d *Dockerd) LogTail() string {
	data, _ := os.ReadFile(d.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

var busyboxImageOnce sync.Map // engine dir -> image imported

// ImportBusybox makes image busybox:observer from the static busybox binary
// (there is no registry here): every applet as a symlink, PATH=/bin.
func (d *Dockerd) ImportBusybox(t testing.TB) string {
	t.Helper()
	const image = "busybox:observer"
	if _, done := busyboxImageOnce.Load(d.Dir); done {
		return image
	}
	root := t.TempDir()
	if err := BuildBusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	tarCmd := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command(dockerCLI(), "-H", d.Host, "import", "--change", "ENV PATH=/bin", "-", image)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("docker import: %v: %s", err, out.String())
	}
	if err := tarCmd.Wait(); err != nil {
		t.Fatalf("tar rootfs: %v", err)
	}
	busyboxImageOnce.Store(d.Dir, true)
	return image
}
