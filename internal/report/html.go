package report

import (
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/observer-dev/observer/internal/event"
)

// Lane is one row of the timeline picture.
type Lane struct {
	Kind  string
	Label string
	Color string
}

// Lanes of the timeline picture, top to bottom, with their colours (tests look
// for these colours in a screenshot). An event type with a lane is notable: it
// goes on the timeline.
var Lanes = []Lane{
	{event.TypeSignal, "fatal signals", "#d62728"},
	{event.TypeDaemonExit, "daemon exits", "#9467bd"},
	{event.TypeResidue, "residue", "#ff7f0e"},
	{event.TypeCopyUp, "copy-ups", "#1f77b4"},
	{event.TypeRenameExdev, "EXDEV renames", "#2ca02c"},
	{KindLost, "lost events", "#7f7f7f"},
}

func laneOf(kind string) int {
	kind = laneKey(kind)
	for i, l := range Lanes {
		if l.Kind == kind {
			return i
		}
	}
	return -1
}

// Geometry of the picture.
const (
	svgWidth   = 1100
	labelWidth = 130
	laneHeight = 44
	axisHeight = 30
	markWidth  = 8
)

type mark struct {
	X, Y, W, H int
	Color      string
	Title      string
}

type tick struct {
	X     int
	Label string
}

func (r *Report) picture() (marks []mark, ticks []tick, taken, height int) {
	start, end := r.Start, r.End
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	span := float64(end.Sub(start))
	plot := svgWidth - labelWidth - 60 // room for the last tick's label
	x := func(t time.Time) int { return labelWidth + int(float64(t.Sub(start))/span*float64(plot)) }
	for _, it := range r.Timeline {
		lane := laneOf(it.Kind)
		if lane < 0 {
			continue
		}
		marks = append(marks, mark{X: x(it.Time) - markWidth/2, Y: lane*laneHeight + 8, W: markWidth, H: laneHeight - 16,
			Color: Lanes[lane].Color, Title: ts(it.Time) + " " + it.Kind + ": " + it.Summary})
	}
	for i := 0; i <= 5; i++ {
		t := start.Add(time.Duration(span * float64(i) / 5))
		ticks = append(ticks, tick{X: x(t), Label: t.UTC().Format("15:04:05.000")})
	}
	return marks, ticks, x(r.Header.StartTime), len(Lanes)*laneHeight + axisHeight
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":    ts,
	"short": short,
	"dur":   func(ns uint64) string { return time.Duration(ns).String() },
	"laneY": func(i int) int { return i * laneHeight },
	"mod":   func(i int) int { return i % 2 },
	"mid":   func(i int) int { return i*laneHeight + laneHeight/2 + 4 },
	"color": func(kind string) string {
		if i := laneOf(kind); i >= 0 {
			return Lanes[i].Color
		}
		return "#444"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>observer capture: {{.R.Header.Host}} {{ts .R.Header.StartTime}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555} .warn{color:#a60} .err{color:#c00;font-weight:bold}
table{border-collapse:collapse} td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6} td.t{white-space:nowrap;font-family:monospace} .chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
svg text{font:12px system-ui,sans-serif;fill:#333}
</style></head><body>
<h1>Incident capture from {{.R.Header.Host}}</h1>
<div class="meta">{{.R.Header.Reason}}<br>
taken {{ts .R.Header.StartTime}} UTC &middot; kernel {{.R.Header.Kernel}} &middot; observer {{.R.Header.ObserverVersion}} &middot;
covers {{ts .R.Start}} to {{ts .R.End}}</div>
{{if not .R.Complete}}<p class="warn">Incomplete capture: no end record.</p>{{end}}
{{if .R.Error}}<p class="err">Damaged: {{.R.Error}} (the report covers what came before)</p>{{end}}
{{range .R.Warnings}}<p class="warn">{{.}}</p>{{end}}
<h2>Timeline</h2>
<svg id="timeline" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
{{range $i, $l := .Lanes}}<rect x="0" y="{{laneY $i}}" width="{{$.Width}}" height="{{$.LaneHeight}}" fill="{{if eq (mod $i) 0}}#fafafa{{else}}#f0f0f0{{end}}"/>
<text x="8" y="{{mid $i}}">{{$l.Label}}</text>
{{end}}{{range .Ticks}}<line x1="{{.X}}" x2="{{.X}}" y1="0" y2="{{$.AxisY}}" stroke="#ccc"/><text x="{{.X}}" y="{{$.LabelY}}" text-anchor="middle">{{.Label}}</text>
{{end}}<line x1="{{.Taken}}" x2="{{.Taken}}" y1="0" y2="{{.AxisY}}" stroke="#000" stroke-dasharray="4 3"><title>capture taken</title></line>
{{range .Marks}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" rx="2" fill="{{.Color}}"><title>{{.Title}}</title></rect>
{{end}}</svg>
<h2>What happened</h2>
<table><tr><th>time (UTC)</th><th>what</th><th>container</th><th>details</th></tr>
{{range .R.Timeline}}<tr><td class="t">{{ts .Time}}</td><td><span class="chip" style="background:{{color .Kind}}"></span>{{.Kind}}</td><td>{{short .ContainerID}}</td><td>{{.Summary}}</td></tr>
{{end}}</table>
{{if .R.TimelineOmitted}}<p class="meta">{{len .R.Timeline}} of {{.R.TimelineTotal}} items shown (the first of each kind and a sample of the rest); {{.R.TimelineOmitted}} more omitted.</p>{{end}}
{{if .R.SlowestCopyUps}}<h2>Slowest copy-ups</h2><table><tr><th>duration</th><th>container</th><th>process</th><th>details</th></tr>
{{range .R.SlowestCopyUps}}<tr><td>{{dur .DurationNS}}</td><td>{{short .ContainerID}}</td><td>{{.Comm}} ({{.PID}})</td><td>{{.Summary}}</td></tr>{{end}}</table>{{end}}
<h2>Containers</h2>
<table><tr><th>container</th><th>name</th><th>image</th><th>events</th><th>first</th><th>last</th></tr>
{{range .R.Containers}}<tr><td>{{short .ID}}</td><td>{{.Name}}</td><td>{{.Image}}</td><td>{{range $k, $v := .Counts}}{{$k}}={{$v}} {{end}}</td><td class="t">{{ts .First}}</td><td class="t">{{ts .Last}}</td></tr>
{{end}}</table>
{{if .R.ContainersOmitted}}<p class="meta">{{.R.ContainersOmitted}} more events of containers not listed.</p>{{end}}
<h2>Sensors</h2>
<table><tr><th>sensor</th><th>mode</th><th>received</th><th>lost</th></tr>
{{range .R.Sensors}}<tr><td>{{.Name}}</td><td>{{if .Mode}}{{.Mode}}{{else}}unavailable: {{.Unavailable}}{{end}}</td><td>{{.EventsReceived}}</td><td>{{.EventsLost}}</td></tr>
{{end}}</table>
</body></html>
`))

// HTML writes one self-contained page (no scripts, no external resources)
// with the timeline drawn as inline SVG.
func (r *Report) HTML(w io.Writer) error {
	marks, ticks, taken, height := r.picture()
	err := page.Execute(w, map[string]any{
		"R": r, "Lanes": Lanes, "Taken": taken, "Marks": marks, "Ticks": ticks,
		"Width": svgWidth, "Height": height, "LaneHeight": laneHeight,
		"AxisY": len(Lanes) * laneHeight, "LabelY": len(Lanes)*laneHeight + 18,
	})
	if err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}
