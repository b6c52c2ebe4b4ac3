package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/capture/hostile"
	"github.com/observer-dev/observer/internal/event"
)

// 2.75 M events in a few megabytes needed 1.7 GB: every timeline item was kept
// before the timeline was cut to MaxTimeline. Now the report streams: the heap
// stays bounded, the totals are exact, and the timeline keeps the first items
// of each kind and a sample of the rest.
func TestManyEventsBoundedMemoryExactTotals(t *testing.T) {
	const n = 2_750_000
	var file bytes.Buffer
	err := hostile.ManyEvents(&file, n, 2000, 0, func(at time.Time, i int) any {
		return &event.RenameExdev{Header: event.Header{Time: at.Add(time.Duration(i) * time.Microsecond), Type: event.TypeRenameExdev,
			PID: uint32(i), TID: uint32(i), Comm: "mv", ContainerID: fmt.Sprintf("%064x", i%1500)}, OldPath: "/app/a", NewPath: "/app/b"}
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	var rep *Report
	peak := hostile.PeakHeap(func() {
		cr, err := capture.NewReader(bytes.NewReader(file.Bytes()))
		if err != nil {
			t.Error(err)
			return
		}
		rep = Build(cr)
	})
	if rep == nil {
		t.FailNow()
	}
	t.Logf("%d events in %d KB: peak heap %d MiB", n, file.Len()>>10, peak>>20)
	if peak > 128<<20 {
		t.Errorf("peak heap %d MiB, want at most 128 MiB whatever the number of events", peak>>20)
	}
	if rep.Error != "" || !rep.Complete || rep.Counts[event.TypeRenameExdev] != n {
		t.Errorf("error %q, complete %v, counts %v; want %d renames, complete", rep.Error, rep.Complete, rep.Counts, n)
	}
	if len(rep.Timeline) != MaxTimeline || rep.TimelineTotal != n || rep.TimelineOmitted != n-MaxTimeline {
		t.Errorf("timeline %d shown, total %d, omitted %d; want %d, %d, %d", len(rep.Timeline), rep.TimelineTotal, rep.TimelineOmitted, MaxTimeline, n, n-MaxTimeline)
	}
	// The capture's first items are all shown, and everything in time order.
	pids := map[uint32]bool{}
	for _, it := range rep.Timeline {
		pids[it.PID] = true
	}
	for i := range uint32(headPerKind) {
		if !pids[i] {
			t.Fatalf("pid %d missing: want the capture's first %d renames shown", i, headPerKind)
		}
	}
	for i := 1; i < len(rep.Timeline); i++ {
		if rep.Timeline[i].Time.Before(rep.Timeline[i-1].Time) {
			t.Fatalf("timeline out of order at %d", i)
		}
	}
	// 1500 containers: MaxContainers listed, the rest counted.
	listed := 0
	for _, c := range rep.Containers {
		listed += c.Counts[event.TypeRenameExdev]
	}
	if len(rep.Containers) != MaxContainers || listed+rep.ContainersOmitted != n {
		t.Errorf("%d containers with %d events + %d omitted; want %d containers and %d events in all", len(rep.Containers), listed, rep.ContainersOmitted, MaxContainers, n)
	}
	var text bytes.Buffer
	if err := rep.Text(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), fmt.Sprintf("Timeline (%d items of %d", MaxTimeline, n)) {
		t.Errorf("text report does not say how many items the timeline has in all:\n%.600s", text.String())
	}
}

// Slots are shared between kinds: a storm of one kind leaves room for the
// few items of the others, all of which are shown.
func TestTimelineSharesSlotsBetweenKinds(t *testing.T) {
	tl := newTimeline()
	for i := range 100_000 {
		tl.add(pending{Item: Item{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: event.TypeRenameExdev, Summary: "r"}})
		if i%10_000 == 0 {
			tl.add(pending{Item: Item{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: event.TypeSignal, Summary: "s"}})
		}
	}
	items, omitted := tl.items()
	kinds := map[string]int{}
	for _, it := range items {
		kinds[it.Kind]++
	}
	if len(items) != MaxTimeline || omitted != 100_010-MaxTimeline || kinds[event.TypeSignal] != 10 {
		t.Errorf("%d items (%v), %d omitted; want %d with all 10 signals, %d omitted", len(items), kinds, omitted, MaxTimeline, 100_010-MaxTimeline)
	}
}
