package container

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable, manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var quiet = slog.New(slog.DiscardHandler)

// eventually polls cond; background lookups are asynchronous by design.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestResolverEnrichment(t *testing.T) {
	events := make(chan any, 4)
	ep := fakeEngine(t, engineMux(events))
	r, err := NewResolver(Options{DockerHost: "unix://" + ep.address, Grace: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.root = "" // a pure unit test: no walk, no handle fallback
	clock := &fakeClock{t: time.Unix(1000, 0)}
	r.now = clock.now
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}

	r.CgroupCreated(10, "/docker/"+testID2)
	r.CgroupCreated(11, "/system.slice/docker-"+testID1+".scope")
	r.CgroupCreated(12, "/system.slice/docker-"+testID1+".scope/init.scope")
	r.CgroupCreated(13, "/system.slice/cron.service")
	eventually(t, "inspect of "+testID2, func() bool { return r.Lookup(10).Name == "db" })
	if got := r.Lookup(10); got != (Container{ID: testID2, Name: "db", Image: "postgres:16"}) {
		t.Fatalf("Lookup(10) = %+v", got)
	}
	eventually(t, "list seeding "+testID1, func() bool { return r.Lookup(12).Name == "web" })
	if got := r.Lookup(13); got != (Container{}) {
		t.Fatalf("host cgroup resolved to %+v", got)
	}
	if got := r.Lookup(999); got != (Container{}) {
		t.Fatalf("unknown cgroup resolved to %+v", got)
	}

	// A container the engine learns about through the events stream.
	const id3 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	events <- map[string]any{"Type": "container", "Action": "start", "Actor": map[string]any{"ID": id3, "Attributes": map[string]string{"name": "job", "image": "busybox:1"}}}
	eventually(t, "start event", func() bool { m, _ := r.meta.get(id3, clock.now()); return m.state == metaKnown })
	r.CgroupCreated(14, "/docker/"+id3)
	if got := r.Lookup(14); got != (Container{ID: id3, Name: "job", Image: "busybox:1"}) {
		t.Fatalf("Lookup(14) = %+v", got)
	}

	want := []Container{{ID: id3, Name: "job", Image: "busybox:1"}, {ID: testID1, Name: "web", Image: "nginx:1"}, {ID: testID2, Name: "db", Image: "postgres:16"}}
	if got := r.Containers(); !slices.Equal(got, want) {
		t.Fatalf("Containers() = %+v", got)
	}

	// Removal: resolvable during grace, then Gone once the last cgroup expired.
	r.CgroupRemoved(11, "/system.slice/docker-"+testID1+".scope")
	r.CgroupRemoved(12, "")
	if got := r.Lookup(12); got.ID != testID1 {
		t.Fatalf("removed cgroup during grace resolved to %+v", got)
	}
	if got := r.Containers(); len(got) != 2 {
		t.Fatalf("Containers() after removal = %+v", got)
	}
	clock.add(59 * time.Second)
	r.expire()
	select {
	case id := <-r.Gone():
		t.Fatalf("gone %s before grace", id)
	default:
	}
	clock.add(time.Second)
	r.expire()
	select {
	case id := <-r.Gone():
		if id != testID1 {
			t.Fatalf("gone %s, want %s", id, testID1)
		}
	case <-time.After(5 * time.Second): // delivered by the resolver's own goroutine
		t.Fatal("nothing gone after grace")
	}
	if got := r.Lookup(12); got != (Container{}) {
		t.Fatalf("expired cgroup resolved to %+v", got)
	}
}

func TestResolverUnknownToEngine(t *testing.T) {
	ep := fakeEngine(t, engineMux(nil))
	r, err := NewResolver(Options{DockerHost: "unix://" + ep.address, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.root = ""
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	const crio = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	r.CgroupCreated(1, "/kubepods.slice/crio-"+crio+".scope")
	eventually(t, "404 cached", func() bool { m, _ := r.meta.get(crio, r.now()); return m.state == metaMissing })
	if got := r.Lookup(1); got != (Container{ID: crio}) {
		t.Fatalf("Lookup = %+v", got)
	}
}

func TestResolverFetchQueueNeverBlocks(t *testing.T) {
	r, err := NewResolver(Options{DockerHost: "unix:///nonexistent/docker.sock", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.root = "" // not started: nothing drains the queue
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint64(fetchQueueDepth * 4) {
			id := []byte(testID1)
			id[0], id[1], id[2] = "0123456789abcdef"[i%16], "0123456789abcdef"[i/16%16], "0123456789abcdef"[i/256%16]
			r.CgroupCreated(i, "/docker/"+string(id))
			r.Lookup(i)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Lookup blocked on a full fetch queue")
	}
	if len(r.meta.m) > fetchQueueDepth {
		t.Fatalf("%d pending entries for a queue of %d", len(r.meta.m), fetchQueueDepth)
	}
}

func TestNewResolverOptions(t *testing.T) {
	if _, err := NewResolver(Options{DockerHost: "ssh://me@host", Logger: quiet}); err == nil {
		t.Error("ssh:// accepted")
	}
	if _, err := NewResolver(Options{Grace: -time.Second, DockerHost: "none", Logger: quiet}); err == nil {
		t.Error("negative grace accepted")
	}
	if _, err := NewResolver(Options{CgroupRoot: t.TempDir(), DockerHost: "none", Logger: quiet}); err == nil {
		t.Error("a tmpfs dir accepted as cgroup root")
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	r, err := NewResolver(Options{Logger: quiet})
	if err != nil || r.engine != nil {
		t.Errorf("TLS: err=%v engine=%v; want enrichment disabled without error", err, r.engine)
	}
	t.Setenv("DOCKER_TLS_VERIFY", "")
	if r, err = NewResolver(Options{Logger: quiet}); err != nil || r.engine == nil || r.engine.ep.address != "127.0.0.1:2376" {
		t.Errorf("DOCKER_HOST from env: err=%v", err)
	}
	if r, err = NewResolver(Options{DockerHost: "none", Logger: quiet}); err != nil || r.engine != nil {
		t.Errorf("none: err=%v", err)
	} else if got := (func() Container { r.CgroupCreated(1, "/docker/"+testID1); return r.Lookup(1) })(); got != (Container{ID: testID1}) {
		t.Errorf("Lookup without engine = %+v", got)
	}
}
