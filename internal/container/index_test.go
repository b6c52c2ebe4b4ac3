package container

import (
	"slices"
	"testing"
	"time"
)

func TestIndexGrace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	x := newIndex(16, 2*time.Minute)
	x.add(10, testID1, false)
	x.add(11, testID1, false) // e.g. /docker/<id>/init.scope
	x.add(12, "", false)

	x.remove(10, testID1, t0)
	if e, ok := x.get(10); !ok || e.ctr != testID1 {
		t.Fatalf("removed entry not resolvable during grace: %+v %v", e, ok)
	}
	if gone := x.expire(t0.Add(3 * time.Minute)); len(gone) != 0 {
		t.Fatalf("gone = %v while cgroup 11 is live", gone)
	}
	if _, ok := x.get(10); ok {
		t.Fatal("entry 10 survived grace")
	}

	x.remove(11, testID1, t0.Add(4*time.Minute))
	x.remove(11, testID1, t0.Add(5*time.Minute)) // duplicate rmdir: no second clock
	if gone := x.expire(t0.Add(5*time.Minute + 59*time.Second)); len(gone) != 0 {
		t.Fatalf("gone too early: %v", gone)
	}
	if gone := x.expire(t0.Add(6 * time.Minute)); !slices.Equal(gone, []string{testID1}) {
		t.Fatalf("gone = %v, want [%s]", gone, testID1)
	}
	if x.holds(testID1) || len(x.entries) != 1 {
		t.Fatalf("leftovers: ctrs=%v entries=%v", x.ctrs, x.entries)
	}
}

func TestIndexSoftAddLosesToEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	x := newIndex(16, time.Minute)
	x.remove(5, testID1, t0) // rmdir seen before the walk reached it
	x.add(5, testID1, true)
	if e, _ := x.get(5); e.removed.IsZero() {
		t.Fatal("soft add revived a removed cgroup")
	}
	x.add(6, "", true)
	x.add(6, testID2, false) // the tracepoint is the authority
	if e, _ := x.get(6); e.ctr != testID2 {
		t.Fatalf("entry 6 = %+v", e)
	}
	if got := x.liveContainers(); !slices.Equal(got, []string{testID2}) {
		t.Fatalf("live = %v", got)
	}
}

func TestIndexBounded(t *testing.T) {
	const max = 8
	t0 := time.Unix(1000, 0)
	x := newIndex(max, time.Hour)
	// Live containers, then removed ones, then a flood of new live cgroups.
	for i := range uint64(4) {
		x.add(i, testID1, false)
	}
	x.add(100, testID2, false)
	x.remove(100, testID2, t0)
	var gone []string
	for i := range uint64(1000) {
		gone = append(gone, x.add(1000+i, "", false)...)
		if len(x.entries) > max {
			t.Fatalf("index grew to %d entries (max %d)", len(x.entries), max)
		}
	}
	if !slices.Contains(gone, testID2) {
		t.Errorf("evicting the removed cgroup did not report its container gone: %v", gone)
	}
	// Removals are bounded too, and repeated remove/re-add of one id cannot grow the queue.
	for i := range 10000 {
		x.remove(uint64(50000+i), testID1, t0.Add(time.Duration(i)))
		x.add(7, testID1, false)
		x.remove(7, testID1, t0.Add(time.Duration(i)))
	}
	if len(x.entries) > max || len(x.queue) > 2*max+1 {
		t.Fatalf("entries=%d queue=%d", len(x.entries), len(x.queue))
	}
	if len(x.ctrs) > max {
		t.Fatalf("ctrs=%d", len(x.ctrs))
	}
}
