package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/testenv"
)

// TestImageUnderDocker builds the image with `make image` on a private dockerd
// and runs it as the README says (privileged, host PID, IPC and network,
// the cgroup and Docker socket mounts): every sensor reports how it attached
// or why not, and a rename in another container arrives as an event with that
// container's id and name.
func TestImageUnderDocker(t *testing.T) {
	testenv.RequireDocker(t)
	if data, _ := os.ReadFile("/sys/module/overlay/parameters/redirect_dir"); strings.TrimSpace(string(data)) == "Y" {
		t.Skip("overlayfs here defaults to redirect_dir=on: directory renames succeed without EXDEV")
	}
	d := testenv.StartDockerd(t)
	tag := fmt.Sprintf("observer-test-%d", time.Now().UnixNano()%1e6)
	mk := exec.Command("make", "-C", repoRoot(), "image", "IMAGE="+tag, "VERSION=test")
	mk.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	if out, err := d.CLI("image", "inspect", "-f", "{{.Size}} {{json .Config.Entrypoint}}", tag+":test"); err != nil || !strings.Contains(out, `["/observer"]`) {
		t.Fatalf("image %s:test: %q %v", tag, out, err)
	} else {
		t.Logf("image size and entrypoint: %s", strings.TrimSpace(out))
	}

	run := t.TempDir() // mounted as /run/observer: the control socket and the events file
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"run", "-d", "--name", tag}, RunFlags(d.Socket, run)...)
	args = append(args, tag+":test", "--listen", addr, "--events", "/run/observer/events.jsonl", "--capture-dir", "/run/observer/captures")
	if out, err := d.CLI(args...); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := d.CLI("logs", "--tail", "40", tag); err == nil {
			t.Logf("observer container log:\n%s", out)
		}
		d.CLI("rm", "-f", tag)
	})

	sock := filepath.Join(run, "observer.sock")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}}
	// Ready: sensors settled, the first container walk done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := d.CLI("logs", tag)
			t.Fatalf("observer container not ready within 60s (%v):\n%s", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var st struct {
		Sensors []struct{ Name, Mode, Unavailable string }
	}
	resp, err := client.Get("http://observer/status")
	if err != nil {
		t.Fatalf("/status over the mounted socket: %v", err)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	attached := map[string]string{}
	for _, s := range st.Sensors {
		attached[s.Name] = s.Mode
		t.Logf("sensor %s: mode %q %s", s.Name, s.Mode, s.Unavailable)
	}
	for _, name := range []string{"rename", "signal", "cgroup", "latency"} {
		if attached[name] == "" {
			t.Errorf("sensor %s did not attach in the container", name)
		}
	}

	image := d.ImportBusybox(t)
	name := tag + "-mover"
	if out, err := d.CLI("run", "--name", name, image, "sh", "-c", "sleep 0.5; mv /root /root-moved"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	idOut, err := d.CLI("inspect", "-f", "{{.Id}}", name)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(idOut)
	events := filepath.Join(run, "events.jsonl")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if ev := findEvent(events, func(ev map[string]any) bool { return ev["type"] == "rename_exdev" && ev["container_id"] == id }); ev != nil {
			if ev["container_name"] != name || ev["old_path"] != "/root" {
				t.Errorf("event %v: want container name %q and old_path /root", ev, name)
			}
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(events)
			t.Fatalf("no rename_exdev from container %s within 20s; events:\n%.3000s", id[:12], data)
		}
	}
}

func findEvent(path string, match func(map[string]any) bool) map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && match(ev) {
			return ev
		}
	}
	return nil
}

// TestImageArm64 builds the arm64 image (make image-arm64) on a private
// dockerd of another architecture: it holds the arm64 binary and says so in
// its platform, so an arm64 node runs it without a platform warning.
func TestImageArm64(t *testing.T) {
	d := testenv.StartDockerd(t)
	tag := fmt.Sprintf("observer-test-%d", time.Now().UnixNano()%1e6)
	mk := exec.Command("make", "-C", repoRoot(), "image-arm64", "IMAGE="+tag, "VERSION=test")
	mk.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image-arm64: %v\n%s", err, out)
	}
	t.Cleanup(func() { d.CLI("rmi", tag+":test-arm64") })
	out, err := d.CLI("image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{json .Config.Entrypoint}}", tag+":test-arm64")
	if err != nil || strings.TrimSpace(out) != `linux/arm64 ["/observer"]` {
		t.Fatalf("image %s:test-arm64: %q %v, want linux/arm64 with /observer", tag, out, err)
	}
	// The binary in it is the arm64 build: copied out of a created (never started) container.
	if out, err := d.CLI("create", "--name", tag, "--platform", "linux/arm64", tag+":test-arm64"); err != nil {
		t.Fatalf("docker create: %v\n%s", err, out)
	}
	t.Cleanup(func() { d.CLI("rm", tag) })
	bin := filepath.Join(t.TempDir(), "observer")
	if out, err := d.CLI("cp", tag+":/observer", bin); err != nil {
		t.Fatalf("docker cp: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("/observer in the arm64 image is %v", f.Machine)
	}
}
