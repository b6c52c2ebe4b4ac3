package residue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/testenv"
	"github.com/observer-dev/observer/internal/testenv/tracertest"
	"github.com/observer-dev/observer/tracer"
)

func TestMain(m *testing.M) {
	testenv.SemLeakerMain()
	os.Exit(m.Run())
}

// startSemSensor runs the real sem sensor and feeds a detector.
func startSemSensor(t *testing.T, d *Detector) {
	t.Helper()
	tr := tracertest.Start(t, tracer.Options{Sensors: []string{tracer.SensorSem}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range tr.Events() {
			d.Observe(ev)
		}
	}()
	t.Cleanup(func() {
		tr.Close() // closes Events (again at tracertest's cleanup: a no-op)
		wg.Wait()
	})
}

type collected struct {
	mu  sync.Mutex
	evs []*event.Residue
}

func (c *collected) publish(ev event.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := ev.(*event.Residue); ok {
		c.evs = append(c.evs, r)
	}
	return true
}

// TestSemResidueKilledCreator: a helper creates dm-cookie and other arrays,
// removes some and is SIGKILLed. Exactly the survivors are residue, with the
// helper's pid and comm; a new detector (an observer restart) still reports
// them, with the creator unknown.
func TestSemResidueKilledCreator(t *testing.T) {
	testenv.RequireRoot(t)
	const grace = 300 * time.Millisecond
	pub := &collected{}
	d := New(Options{Grace: grace, Publish: pub.publish})
	d.Reconcile(context.Background())
	startSemSensor(t, d)

	low := rand.Uint32N(0xfff0) + 1
	dmKey := func(i uint32) uint32 { return 0x0d4d0000 | ((low + i) & 0xffff) }
	otherKey := func(i uint32) uint32 { return 0x5e000000 | (low << 4) | i }
	spec := fmt.Sprintf("%x:0,%x:1,%x:0,%x:0,%x:1,0:0", dmKey(0), dmKey(1), dmKey(2), otherKey(0), otherKey(1))

	cmd, kept, removed := testenv.StartSemLeaker(t, spec)
	helperPid := uint32(cmd.Process.Pid)
	if len(kept) != 4 || len(removed) != 2 {
		cmd.Process.Kill()
		t.Fatalf("helper kept %v removed %v; want 4 and 2", kept, removed)
	}

	// Every survivor is known with its creator before the kill.
	waitFor(t, "sem_create events for the helper's arrays", func() bool {
		n := 0
		for _, s := range d.Semaphores() {
			if _, ok := kept[s.SemID]; ok && s.Creator.Known && s.Creator.PID == helperPid {
				n++
			}
		}
		return n == len(kept)
	})
	d.Reconcile(context.Background())
	if items := helperItems(d.Residue(), kept, removed); len(items) != 0 {
		t.Fatalf("residue while the creator lives: %+v", items)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	d.Reconcile(context.Background()) // notes the creator gone; grace not yet over
	if items := helperItems(d.Residue(), kept, removed); len(items) != 0 {
		t.Fatalf("residue before the grace period ended: %+v", items)
	}
	time.Sleep(grace + 50*time.Millisecond)
	d.Reconcile(context.Background())
	items := helperItems(d.Residue(), kept, removed)
	if len(items) != len(kept) {
		t.Logf("inventory: %+v", d.Semaphores())
	}
	checkSurvivors(t, items, kept, true, helperPid)
	// One residue event per survivor, with the same attribution.
	pub.mu.Lock()
	var evs []*event.Residue
	for _, ev := range pub.evs {
		if ev.SemID != nil {
			if _, ok := kept[*ev.SemID]; ok {
				evs = append(evs, ev)
			}
		}
	}
	pub.mu.Unlock()
	if len(evs) != len(kept) {
		t.Fatalf("residue events for the survivors: %d, want %d", len(evs), len(kept))
	}
	for _, ev := range evs {
		if ev.Resource != "sem" || ev.Creator.PID != helperPid || ev.Creator.Comm != "residue.test" || ev.Remove != fmt.Sprintf("ipcrm -s %d", *ev.SemID) {
			t.Fatalf("residue event %+v", ev)
		}
	}
	d.Reconcile(context.Background())
	// Only the helper's arrays count: on a shared host other residue (veths a
	// concurrent Docker test leaves) may be published too.
	pub.mu.Lock()
	n := 0
	for _, ev := range pub.evs {
		if ev.SemID != nil {
			if _, ok := kept[*ev.SemID]; ok {
				n++
			}
		}
	}
	pub.mu.Unlock()
	if n != len(evs) {
		t.Fatalf("%d residue events for the survivors after a second scan, want still %d (one per object)", n, len(evs))
	}

	// An observer restart: a new detector with no events.
	d2 := New(Options{Grace: time.Nanosecond})
	d2.Reconcile(context.Background())
	checkSurvivors(t, helperItems(d2.Residue(), kept, removed), kept, false, 0)
	testenv.Result(t, map[string]any{"test": "sem_residue", "survivors": len(kept), "removed": len(removed), "reported": len(items)})

	// --clean dm-sem removes only the dm cookies; --clean sem the rest, its
	// creator being known to have exited.
	var cleanOut strings.Builder
	if err := Clean(items, CleanDMSem, 0, &cleanOut); err != nil {
		t.Fatalf("clean dm-sem: %s", cleanOut.String())
	}
	if n := strings.Count(cleanOut.String(), "removed "); n != 2 {
		t.Fatalf("clean dm-sem removed %d arrays, want 2:\n%s", n, cleanOut.String())
	}
	d.Reconcile(context.Background())
	if left := helperItems(d.Residue(), kept, removed); len(left) != 2 || left[0].Kind != KindOther {
		t.Fatalf("after clean dm-sem: %+v", left)
	}
	cleanOut.Reset()
	if err := Clean(helperItems(d.Residue(), kept, removed), CleanSem, 0, &cleanOut); err != nil {
		t.Fatalf("clean sem: %s", cleanOut.String())
	}
	d.Reconcile(context.Background())
	for _, s := range d.Semaphores() {
		if _, ok := kept[s.SemID]; ok {
			t.Fatalf("array %d survived --clean: %s", s.SemID, cleanOut.String())
		}
	}
}

// helperItems keeps the residue items about the helper's arrays and fails on
// any about the arrays it removed.
func helperItems(items []Item, kept map[int32]uint32, removed []int32) []Item {
	var out []Item
	for _, it := range items {
		if it.SemID == nil {
			continue
		}
		if _, ok := kept[*it.SemID]; ok {
			out = append(out, it)
		}
		for _, r := range removed {
			if *it.SemID == r {
				out = append(out, it) // flagged by checkSurvivors as unexpected
			}
		}
	}
	return out
}

func checkSurvivors(t *testing.T, items []Item, kept map[int32]uint32, known bool, pid uint32) {
	t.Helper()
	if len(items) != len(kept) {
		t.Fatalf("residue = %+v, want exactly the %d survivors %v", items, len(kept), kept)
	}
	for _, it := range items {
		key, ok := kept[*it.SemID]
		if !ok {
			t.Fatalf("removed array %d reported as residue", *it.SemID)
		}
		wantKind := KindOther
		if key>>16 == 0x0d4d {
			wantKind = KindDMUdevCookie
		}
		if it.Kind != wantKind || it.Key != fmt.Sprintf("0x%08x", key) {
			t.Fatalf("item %+v: want kind %s key %#x", it, wantKind, key)
		}
		if it.Creator.Known != known {
			t.Fatalf("item %+v: creator known = %v, want %v", it, it.Creator.Known, known)
		}
		if known && (it.Creator.PID != pid || it.Creator.Comm != "residue.test" || !strings.HasSuffix(it.Creator.Exe, "residue.test")) {
			t.Fatalf("item %+v: want creator pid %d comm residue.test", it, pid)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
