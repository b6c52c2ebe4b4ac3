package tracer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
)

// These tests follow an event from a real runc container (busybox on an
// overlay root, cgroup /docker/<id>) through the tracer and
// container.Resolver, in every attach mode the kernel offers, on the host and
// in the QEMU kernels. They live here, not in a package of their own, so they
// reuse startSensor's per-mode expectations and add no test binary to boot.

// releaseFile is created in the container's root by the test once it has
// resolved the event: the container stays alive (its cgroup exists) until
// then, so a lookup by file handle can never race the container's exit.
const releaseFile = "release"

const waitForRelease = "while ! test -e /" + releaseFile + "; do usleep 20000; done"

// startResolver is the daemon's correlation without Docker enrichment: a walk
// of the cgroup v2 tree, then cgroup events and open_by_handle_at for misses.
func startResolver(t *testing.T) *container.Resolver {
	t.Helper()
	r, err := container.NewResolver(container.Options{DockerHost: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

// runHeld runs script in c in the background; the returned func releases the
// container and returns its result. Cleanup releases it too if the test fails.
func runHeld(t *testing.T, c *testenv.Container, script string) (finish func() testenv.RunResult) {
	t.Helper()
	release := filepath.Join(c.Merged, releaseFile)
	os.Remove(release)
	type outcome struct {
		res testenv.RunResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := c.Run(ctx, script+"; "+waitForRelease)
		done <- outcome{res, err}
	}()
	var got *outcome
	finish = func() testenv.RunResult {
		if got == nil {
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Errorf("releasing container: %v", err)
			}
			o := <-done
			got = &o
		}
		if got.err != nil {
			t.Fatalf("container %s: %v", c.ID[:12], got.err)
		}
		return got.res
	}
	t.Cleanup(func() {
		if got == nil {
			os.WriteFile(release, nil, 0o644)
			<-done
		}
	})
	return finish
}

// waitCorrelated reads events as the daemon's pipeline does (cgroup changes
// feed the resolver, the others are looked up) until match accepts one.
func waitCorrelated(t *testing.T, tr *Tracer, r *container.Resolver, match func(event.Event) bool) event.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	var seen []string
	for {
		select {
		case ev, ok := <-tr.Events():
			if !ok {
				t.Fatal("events channel closed")
			}
			if c, isCgroup := ev.(*event.CgroupChange); isCgroup {
				if c.Type == event.TypeCgroupRmdir {
					r.CgroupRemoved(c.ID, c.Path)
				} else {
					r.CgroupCreated(c.ID, c.Path)
				}
				continue
			}
			h := ev.Hdr()
			h.ContainerID = r.Lookup(h.CgroupID).ID
			if match(ev) {
				return ev
			}
			if len(seen) < 8 {
				seen = append(seen, h.Type+" from "+h.Comm+" in container "+container.ShortID(h.ContainerID))
			}
		case <-deadline:
			t.Fatalf("no matching event within 15s; other events: %v; status: %+v", seen, tr.Status())
		}
	}
}

func TestRenameExdevInContainer(t *testing.T) {
	requireRoot(t)
	modes := renameModes
	lower := map[string]string{}
	for _, m := range modes {
		lower["data/src-"+string(m)+"/"] = ""
		lower["data/src-"+string(m)+"/file"] = "payload\n"
	}
	c := testenv.NewContainer(t, testenv.ContainerOptions{Lower: lower})
	res := startResolver(t)
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorRename, mode, modeOptions(mode, Options{Sensors: []string{SensorCgroup}}))
			if tr == nil {
				return
			}
			src, dst := "/data/src-"+string(mode), "/data/dst-"+string(mode)
			// busybox mv falls back to copy+delete on EXDEV and succeeds; the
			// kernel still refused the rename, which is what the sensor reports.
			finish := runHeld(t, c, "mv "+src+" "+dst+" && grep -q payload "+dst+"/file && ! test -e "+src+" && echo moved")
			ev := waitCorrelated(t, tr, res, func(ev event.Event) bool {
				r, ok := ev.(*event.RenameExdev)
				return ok && r.OldPath == src && r.NewPath == dst
			}).(*event.RenameExdev)
			if ev.ContainerID != c.ID {
				t.Errorf("rename_exdev from %s (cgroup %d) resolved to container %q, want %s", ev.Comm, ev.CgroupID, ev.ContainerID, c.ID)
			}
			if ev.Comm != "mv" || ev.Flags != 0 {
				t.Errorf("event = %+v, want comm mv and flags 0", ev)
			}
			if out := finish(); out.ExitCode != 0 || !strings.Contains(out.Output, "moved") {
				t.Errorf("container exit %d, output:\n%s", out.ExitCode, out.Output)
			}
		})
	}
}

func TestSignalInContainer(t *testing.T) {
	requireRoot(t)
	// A "dockerd" that writes until its reader is gone: the kernel sends it SIGPIPE.
	c := testenv.NewContainer(t, testenv.ContainerOptions{Prepare: func(lower string) error {
		return os.WriteFile(filepath.Join(lower, "bin", "dockerd"), []byte("#!/bin/sh\nwhile :; do echo x; done\n"), 0o755)
	}})
	res := startResolver(t)
	for _, mode := range []Mode{ModeTPBTF, ModeTracepoint} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSignal, mode, Options{Sensors: []string{SensorCgroup}})
			if tr == nil {
				return
			}
			finish := runHeld(t, c, "dockerd | head -n 1 >/dev/null")
			sig := waitCorrelated(t, tr, res, func(ev event.Event) bool {
				s, ok := ev.(*event.Signal)
				return ok && s.TargetComm == "dockerd" && s.Signal == "SIGPIPE" && s.ContainerID == c.ID
			}).(*event.Signal)
			if sig.SenderPID != sig.TargetPID || sig.Result != "delivered" {
				t.Errorf("signal event = %+v, want SIGPIPE raised by dockerd on itself, delivered", sig)
			}
			exit := waitCorrelated(t, tr, res, func(ev event.Event) bool {
				e, ok := ev.(*event.DaemonExit)
				return ok && e.PID == sig.TargetPID
			}).(*event.DaemonExit)
			if exit.Signal != "SIGPIPE" || exit.ContainerID != c.ID {
				t.Errorf("daemon_exit = %+v, want SIGPIPE in container %s", exit, c.ID)
			}
			finish()
		})
	}
}
