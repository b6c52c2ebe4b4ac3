// Package incident decides when the flight recorder's content becomes a
// capture on disk: incident rules watch the event stream and sensor counters,
// a manager rate-limits the captures they trigger and keeps the capture
// directory within its bounds, and an HTTP handler takes captures on request.
package incident

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/sensor"
)

// Rule names, as --incident-rules takes them.
const (
	RuleFatalSignal = "fatal_signal" // a watched daemon got a signal whose default action kills
	RuleDaemonExit  = "daemon_exit"  // a watched daemon died: killed by a signal or a non-zero exit code
	RuleResidue     = "residue"      // a residue detector reported a leftover (semaphore, veth)
	RuleSlowCopyUp  = "slow_copy_up" // an overlayfs copy-up took longer than the threshold
	RuleEventsLost  = "events_lost"  // a sensor's ring buffer overflowed
)

// ruleNames are every rule this package implements.
var ruleNames = []string{RuleFatalSignal, RuleDaemonExit, RuleResidue, RuleSlowCopyUp, RuleEventsLost}

// RuleNames lists the rules, sorted, as --incident-rules takes them.
func RuleNames() []string { return slices.Sorted(slices.Values(ruleNames)) }

// ValidateRules refuses a name that is not a rule.
func ValidateRules(names []string) error {
	for _, n := range names {
		if !slices.Contains(ruleNames, n) {
			return fmt.Errorf("unknown rule %q (rules: %s)", n, strings.Join(RuleNames(), ","))
		}
	}
	return nil
}

// Incident is one rule firing.
type Incident struct {
	Rule   string
	Detail string
	Time   time.Time
}

// Reason is the capture's reason line.
func (i Incident) Reason() string { return "incident " + i.Rule + ": " + i.Detail }

// Rules is the pipeline observer that fires incidents. Observe runs on the
// pipeline goroutine: it only looks at the type and hands off.
type Rules struct {
	on              map[string]bool
	copyUpThreshold time.Duration
	fire            func(Incident)
	lost            uint64 // last sum of events_lost seen by CheckLost
	lostPrimed      bool
}

// NewRules enables the named rules; fire must not block.
func NewRules(names []string, copyUpThreshold time.Duration, fire func(Incident)) *Rules {
	r := &Rules{on: map[string]bool{}, copyUpThreshold: copyUpThreshold, fire: fire}
	for _, n := range names {
		r.on[n] = true
	}
	return r
}

// Observe checks one event against the rules.
func (r *Rules) Observe(ev event.Event) {
	h := ev.Hdr()
	switch e := ev.(type) {
	case *event.Signal:
		if r.on[RuleFatalSignal] && e.Disposition == "default" {
			r.fire(Incident{RuleFatalSignal, fmt.Sprintf("%s to %s (pid %d) from %s (pid %d)", e.Signal, e.TargetComm, e.TargetPID, e.SenderComm, e.SenderPID), h.Time})
		}
		return
	case *event.DaemonExit:
		// runc and shims exit 0 all day long; only a death is an incident.
		if r.on[RuleDaemonExit] && (e.Signal != "" || e.ExitCode != 0) {
			how := fmt.Sprintf("exit code %d", e.ExitCode)
			if e.Signal != "" {
				how = "killed by " + e.Signal
			}
			r.fire(Incident{RuleDaemonExit, fmt.Sprintf("%s (pid %d) %s", h.Comm, h.PID, how), h.Time})
		}
		return
	}
	if e, ok := ev.(*event.Residue); ok {
		if r.on[RuleResidue] {
			id := e.Name
			if e.SemID != nil {
				id = fmt.Sprintf("semid %d key %s", *e.SemID, e.Key)
			}
			r.fire(Incident{RuleResidue, fmt.Sprintf("%s %s %s left by %s (pid %d)", e.Resource, e.Kind, id, e.Creator.Comm, e.Creator.PID), h.Time})
		}
		return
	}
	// Rules also match by type name, so that events kept as *event.Unknown (a
	// capture from another build) still count.
	switch {
	case r.on[RuleResidue] && (h.Type == event.TypeResidue || strings.HasPrefix(h.Type, event.TypeResidue+"_")):
		r.fire(Incident{RuleResidue, fmt.Sprintf("%s reported (pid %d %s)", h.Type, h.PID, h.Comm), h.Time})
	case r.on[RuleSlowCopyUp] && h.Type == event.TypeCopyUp:
		if d := durationOf(ev); d > r.copyUpThreshold {
			r.fire(Incident{RuleSlowCopyUp, fmt.Sprintf("copy-up took %v (threshold %v) in %s (pid %d)", d, r.copyUpThreshold, h.Comm, h.PID), h.Time})
		}
	}
}

// durationOf is a copy-up's duration. Only an event of a type this build does
// not know (*event.Unknown, from a newer capture) goes through its JSON; a
// typed one says it (event.Timed), as this runs on the pipeline goroutine.
func durationOf(ev event.Event) time.Duration {
	switch e := ev.(type) {
	case event.Timed:
		return e.Duration()
	case *event.Unknown:
		var d struct {
			DurationNS uint64 `json:"duration_ns"`
		}
		json.Unmarshal(e.Raw, &d)
		return time.Duration(d.DurationNS)
	}
	return 0
}

// CheckLost fires when the sensors' events_lost total grew since the last
// check. The first call only sets the baseline. Call it from one goroutine.
func (r *Rules) CheckLost(st []sensor.Status, now time.Time) {
	var sum uint64
	var who []string
	for _, s := range st {
		sum += s.EventsLost
		if s.EventsLost > 0 {
			who = append(who, fmt.Sprintf("%s=%d", s.Name, s.EventsLost))
		}
	}
	prev, primed := r.lost, r.lostPrimed
	r.lost, r.lostPrimed = sum, true
	if primed && sum > prev && r.on[RuleEventsLost] {
		r.fire(Incident{RuleEventsLost, fmt.Sprintf("%d events lost since the last check (totals: %s)", sum-prev, strings.Join(who, " ")), now})
	}
}
