// Command systemtest-guest runs in the systemtest guest as a oneshot unit
// (testdata/systemtest/systemtest.service): it waits for the node, runs the
// scenarios, prints their results on the serial console and powers off.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/server"
	"github.com/observer-dev/observer/internal/systemtest"
	"github.com/observer-dev/observer/internal/systemtest/scenario"
)

func main() {
	var uts unix.Utsname
	unix.Uname(&uts)
	n := &scenario.Node{
		Kernel:     cmdline("observer.kernel"),
		Release:    unix.ByteSliceToString(uts.Release[:]),
		Observer:   "127.0.0.1:9810",
		Socket:     server.DefaultSocket,
		Prometheus: "http://127.0.0.1:9090",
		Out:        os.Stdout,
	}
	fmt.Printf("\n%s kernel=%s release=%s\n", systemtest.BootedMarker, n.Kernel, n.Release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	go n.Follow(ctx)
	if err := run(ctx, n); err != nil {
		n.Progress("node not usable: %v", err)
		diagnose()
	}
	fmt.Printf("\n%s\n", systemtest.DoneMarker)
	os.Stdout.Sync()
	time.Sleep(time.Second) // let the console drain
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run(ctx context.Context, n *scenario.Node) error {
	start := time.Now()
	if err := n.WaitReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	n.Progress("node ready %s after the runner started", time.Since(start).Round(time.Second))
	n.LogSensors(ctx)
	imported := time.Now()
	if err := scenario.BuildImage(ctx); err != nil {
		return err
	}
	n.Progress("image %s imported in %s", scenario.Image, time.Since(imported).Round(time.Second))
	if !scenario.RunAll(ctx, n, cmdline("observer.scenarios")) {
		diagnose()
	}
	return nil
}

// diagnose prints what the observer and its neighbours logged.
func diagnose() {
	for _, args := range [][]string{
		{"systemctl", "--no-pager", "status", "observer", "docker", "prometheus"},
		{"journalctl", "--no-pager", "-n", "80", "-u", "observer"},
	} {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
		fmt.Printf("%s$ %s\n%s\n", systemtest.ProgressPrefix, strings.Join(args, " "), out)
	}
}

// cmdline is a key=value parameter the harness put on the kernel command line.
func cmdline(key string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
