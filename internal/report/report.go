// Package report turns a capture into what an operator reads after an
// incident: a timeline of what matters (signals, daemon exits, residue, slow
// copy-ups, EXDEV renames, lost events), per-container summaries, as text,
// JSON or one self-contained HTML page.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/container"
	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// Limits keep a report readable (and bounded) for a capture of a storm.
const (
	MaxTimeline = 500
	TopCopyUps  = 10
)

// Kinds of timeline items. Event types map to themselves; lost events come from
// sensor counters in snapshots and from the capture's own drop counts.
const KindLost = "events_lost"

// Item is one line of the timeline.
type Item struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	PID         uint32    `json:"pid,omitempty"`
	Comm        string    `json:"comm,omitempty"`
	ContainerID string    `json:"container_id,omitempty"`
	Summary     string    `json:"summary"`
	DurationNS  uint64    `json:"duration_ns,omitempty"`
}

// Container summarises one container's events ("" is the host).
type Container struct {
	ID     string         `json:"id"`
	Name   string         `json:"name,omitempty"`
	Image  string         `json:"image,omitempty"`
	Counts map[string]int `json:"counts"`
	First  time.Time      `json:"first"`
	Last   time.Time      `json:"last"`
}

// Report is the whole analysis of one capture.
type Report struct {
	Header   capture.Header `json:"header"`
	Complete bool           `json:"complete"`
	Warnings []string       `json:"warnings,omitempty"`
	Error    string         `json:"error,omitempty"` // the capture was damaged: the report covers what came before
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Counts   map[string]int `json:"counts"` // events by type
	// Timeline is in time order, at most MaxTimeline items: of each kind the
	// first ones and a uniform sample of the rest, the slots shared fairly
	// between kinds. TimelineTotal counts every item (exact), TimelineOmitted
	// those not shown.
	Timeline        []Item      `json:"timeline"`
	TimelineTotal   int         `json:"timeline_total"`
	TimelineOmitted int         `json:"timeline_omitted,omitempty"`
	SlowestCopyUps  []Item      `json:"slowest_copy_ups,omitempty"`
	Containers      []Container `json:"containers"`
	// ContainersOmitted counts the events of containers past MaxContainers.
	ContainersOmitted int             `json:"containers_omitted_events,omitempty"`
	Sensors           []sensor.Status `json:"sensors"`
	Captured          *capture.End    `json:"capture_end,omitempty"`
}

// notable are the event types that go on the timeline: those with a lane in
// the picture (Lanes). Lost events are the report's own items, never an event's.
func notable(typ string) bool {
	return typ != KindLost && laneOf(typ) >= 0
}

// Build reads the whole capture, streaming: what it keeps is bounded (see
// MaxTimeline, MaxContainers, MaxTypes) whatever the capture holds, and every
// total is exact. A damaged capture still gives a report of what came before
// the damage, with Error set.
func Build(cr *capture.Reader) *Report {
	b := &builder{r: &Report{Header: cr.Header(), Counts: map[string]int{}, Sensors: cr.Header().Sensors},
		ctrs: map[string]*Container{}, known: map[string]container.Container{}, lastLost: map[string]uint64{},
		tl: newTimeline(), copyUps: slowest{n: TopCopyUps}}
	r := b.r
	if len(r.Sensors) > maxSensors {
		r.Sensors = r.Sensors[:maxSensors]
	}
	for _, s := range r.Sensors {
		b.lastLost[s.Name] = s.EventsLost
	}
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.Error = err.Error()
			break
		}
		switch rec.Kind {
		case capture.KindEvent:
			b.addEvent(rec.Event)
		case capture.KindSnapshot:
			b.addSnapshot(rec.Snapshot)
		case capture.KindEnd:
			r.Captured = rec.End
			r.span(rec.End.Time)
			if rec.End.Dropped > 0 {
				b.tl.add(pending{Item: Item{Time: rec.End.Time, Kind: KindLost,
					Summary: fmt.Sprintf("the capture missed %d events (its writer fell behind)", rec.End.Dropped)}})
			}
			if rec.End.RecorderDropped > 0 {
				b.tl.add(pending{Item: Item{Time: rec.End.Time, Kind: KindLost,
					Summary: fmt.Sprintf("the flight recorder missed %d events in its life (its queue was full)", rec.End.RecorderDropped)}})
			}
		}
	}
	r.Complete = cr.Complete()
	r.Warnings = cr.Warnings()
	r.Timeline, r.TimelineOmitted = b.tl.items()
	r.TimelineTotal = len(r.Timeline) + r.TimelineOmitted
	r.SlowestCopyUps = b.copyUps.list()
	for _, c := range b.ctrs {
		if k, ok := b.known[c.ID]; ok {
			c.Name = cmp(c.Name, k.Name)
			c.Image = cmp(c.Image, k.Image)
		}
		r.Containers = append(r.Containers, *c)
	}
	sort.Slice(r.Containers, func(i, j int) bool { return r.Containers[i].ID < r.Containers[j].ID })
	return r
}

// builder is the state of one Build, all of it bounded.
type builder struct {
	r        *Report
	ctrs     map[string]*Container
	known    map[string]container.Container // names and images from snapshots
	lastLost map[string]uint64              // per sensor, the last lost-events counter seen
	tl       *timeline
	copyUps  slowest
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *Report) span(t time.Time) {
	if t.IsZero() {
		return
	}
	if r.Start.IsZero() || t.Before(r.Start) {
		r.Start = t
	}
	if t.After(r.End) {
		r.End = t
	}
}

func (b *builder) addEvent(ev event.Event) {
	r := b.r
	h := ev.Hdr()
	typ := h.Type
	if _, ok := r.Counts[typ]; !ok && len(r.Counts) >= MaxTypes {
		typ = OtherTypes
	}
	r.Counts[typ]++
	r.span(h.Time)
	c := b.ctrs[h.ContainerID]
	if c == nil && len(b.ctrs) >= MaxContainers {
		r.ContainersOmitted++
	} else {
		if c == nil {
			c = &Container{ID: h.ContainerID, Counts: map[string]int{}, First: h.Time}
			b.ctrs[h.ContainerID] = c
		}
		ct := h.Type
		if _, ok := c.Counts[ct]; !ok && len(c.Counts) >= MaxTypes {
			ct = OtherTypes
		}
		c.Counts[ct]++
		c.Last = h.Time
		c.Name, c.Image = cmp(c.Name, h.ContainerName), cmp(c.Image, h.ContainerImage)
	}
	if !notable(h.Type) {
		return
	}
	p := pending{Item: Item{Time: h.Time, Kind: h.Type, PID: h.PID, Comm: h.Comm, ContainerID: h.ContainerID}, ev: ev}
	if t, ok := ev.(event.Timed); ok {
		p.DurationNS = uint64(max(t.Duration(), 0))
		b.copyUps.add(p)
	}
	b.tl.add(p)
}

func (b *builder) addSnapshot(s *capture.Snapshot) {
	r := b.r
	r.span(s.Time)
	var ctrs []container.Container
	if json.Unmarshal(s.Sections["containers"], &ctrs) == nil {
		for _, c := range ctrs {
			if _, ok := b.known[c.ID]; ok || len(b.known) < maxKnown {
				b.known[c.ID] = c
			}
		}
	}
	var st []sensor.Status
	if json.Unmarshal(s.Sections["sensors"], &st) != nil || len(st) == 0 {
		return
	}
	if len(st) > maxSensors {
		st = st[:maxSensors]
	}
	r.Sensors = st
	for _, x := range st {
		prev, ok := b.lastLost[x.Name]
		if ok && x.EventsLost > prev {
			b.tl.add(pending{Item: Item{Time: s.Time, Kind: KindLost,
				Summary: fmt.Sprintf("sensor %s lost %d events (ring buffer full); %d lost in total", x.Name, x.EventsLost-prev, x.EventsLost)}})
		}
		if ok || len(b.lastLost) < maxSensors {
			b.lastLost[x.Name] = x.EventsLost
		}
	}
}

// summary is an event's timeline line: its own Summary, or its fields for an
// event that has none (a type this observer does not know).
func summary(ev event.Event) string {
	if s, ok := ev.(event.Summarizer); ok {
		return s.Summary()
	}
	return event.FieldsOf(ev).String()
}
