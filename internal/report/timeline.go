package report

import (
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/observer-dev/observer/internal/event"
)

// Bounds of what a report keeps while it reads a capture: a capture of a
// storm (millions of events) or a crafted one must not need memory in
// proportion to its events. Totals stay exact; only the items shown are sampled.
const (
	// headPerKind items of each kind are kept from the start (the first signal
	// of a storm is the one that matters); the rest of a kind is sampled.
	headPerKind = 50
	// MaxContainers bounds the per-container summaries; events of containers
	// past it are counted in ContainersOmitted.
	MaxContainers = 1000
	// MaxTypes bounds the distinct event types counted by name; the rest are
	// counted under OtherTypes.
	MaxTypes = 64
	// OtherTypes is the Counts key of event types past MaxTypes.
	OtherTypes = "(other types)"
	maxKnown   = 4 * MaxContainers // container names learnt from snapshots
	maxSensors = 256               // sensors tracked for lost-event counters
)

// pending is a timeline item whose summary is written only if it is shown.
type pending struct {
	Item
	ev  event.Event // nil when Summary is already set
	seq uint64      // arrival order, to keep equal times in capture order
}

func (p *pending) item() Item {
	if p.ev != nil {
		p.Summary = summary(p.ev)
		if l, ok := p.ev.(event.Leftover); ok && p.PID == 0 {
			// The detector found it; the process that matters is the one that left it.
			p.PID, p.Comm = l.LeftBy()
		}
		p.ev = nil
	}
	return p.Item
}

// lane is one kind's share of the timeline: its first headPerKind items and a
// uniform reservoir sample (Algorithm R) of MaxTimeline of the rest.
type lane struct {
	total     int
	head      []pending
	reservoir []pending
	seen      int // items offered to the reservoir
}

// timeline keeps a bounded, representative part of the timeline while the
// capture streams by: memory is at most lanes x (headPerKind + MaxTimeline) items.
type timeline struct {
	lanes map[string]*lane
	rng   *rand.Rand
	seq   uint64
}

func newTimeline() *timeline {
	// A fixed seed: the same capture gives the same report.
	return &timeline{lanes: map[string]*lane{}, rng: rand.New(rand.NewPCG(1, 17))}
}

// laneKey groups kinds: every residue_* kind shares the residue lane, so
// crafted kinds cannot multiply the lanes (notable kinds are a fixed set).
func laneKey(kind string) string {
	if strings.HasPrefix(kind, event.TypeResidue) {
		return event.TypeResidue
	}
	return kind
}

func (t *timeline) add(p pending) {
	t.seq++
	p.seq = t.seq
	k := laneKey(p.Kind)
	l := t.lanes[k]
	if l == nil {
		l = &lane{}
		t.lanes[k] = l
	}
	l.total++
	if len(l.head) < headPerKind {
		l.head = append(l.head, p)
		return
	}
	l.seen++
	if len(l.reservoir) < MaxTimeline {
		l.reservoir = append(l.reservoir, p)
		return
	}
	if j := t.rng.IntN(l.seen); j < MaxTimeline {
		l.reservoir[j] = p
	}
}

// items picks at most MaxTimeline items in time order, sharing the slots
// fairly between kinds (a kind with fewer items leaves its slots to the
// others), and returns them with how many were left out.
func (t *timeline) items() ([]Item, int) {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range t.lanes {
			if !yield(k) {
				return
			}
		}
	})
	total := 0
	for _, k := range keys {
		total += t.lanes[k].total
	}
	// Water-filling: kinds in order of size, each gets an equal share of what is left.
	bySize := slices.Clone(keys)
	sort.SliceStable(bySize, func(i, j int) bool { return t.lanes[bySize[i]].total < t.lanes[bySize[j]].total })
	quota := map[string]int{}
	left := MaxTimeline
	for i, k := range bySize {
		q := min(t.lanes[k].total, left/(len(bySize)-i))
		quota[k] = q
		left -= q
	}
	var chosen []pending
	for _, k := range keys {
		l, q := t.lanes[k], quota[k]
		n := min(q, len(l.head))
		chosen = append(chosen, l.head[:n]...)
		if rest := q - n; rest > 0 {
			// A uniform sample of the reservoir is a uniform sample of the rest.
			r := slices.Clone(l.reservoir)
			t.rng.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
			chosen = append(chosen, r[:min(rest, len(r))]...)
		}
	}
	sort.Slice(chosen, func(i, j int) bool {
		if !chosen[i].Time.Equal(chosen[j].Time) {
			return chosen[i].Time.Before(chosen[j].Time)
		}
		return chosen[i].seq < chosen[j].seq
	})
	out := make([]Item, len(chosen))
	for i := range chosen {
		out[i] = chosen[i].item()
	}
	return out, total - len(out)
}

// slowest keeps the n slowest timed events (event.Timed: the copy-ups) seen.
type slowest struct {
	n     int
	items []pending
	seq   uint64
}

func (s *slowest) add(p pending) {
	s.seq++
	p.seq = s.seq
	if len(s.items) == s.n && p.DurationNS <= s.items[len(s.items)-1].DurationNS {
		return
	}
	i := sort.Search(len(s.items), func(i int) bool { return s.items[i].DurationNS < p.DurationNS })
	s.items = slices.Insert(s.items, i, p)
	if len(s.items) > s.n {
		s.items = s.items[:s.n]
	}
}

func (s *slowest) list() []Item {
	out := make([]Item, len(s.items))
	for i := range s.items {
		out[i] = s.items[i].item()
	}
	return out
}
