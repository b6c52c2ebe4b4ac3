package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/incident"
)

// Forensics configures the flight recorder, captures and incident rules. The
// zero value is off (replays and tests); Parse turns it on with the defaults.
type Forensics struct {
	Enabled         bool
	Window          time.Duration
	MaxBytes        int64
	CaptureDir      string
	CaptureKeep     int
	CaptureMaxBytes int64
	// IncidentRules are the rule names that trigger a capture (see incident.RuleNames).
	IncidentRules    []string
	IncidentDuration time.Duration
	IncidentCooldown time.Duration
	CopyUpThreshold  time.Duration
}

// DefaultCaptureDir is where captures go unless --capture-dir says otherwise.
const DefaultCaptureDir = "/var/lib/observer/captures"

// DefaultIncidentRules are every rule internal/incident implements, all on
// unless --incident-rules says otherwise.
var DefaultIncidentRules = strings.Join(incident.RuleNames(), ",")

type forensicsFlags struct {
	recorder                   bool
	bytes, captureBytes, rules string
}

func (c *Forensics) addFlags(fs *flag.FlagSet, f *forensicsFlags) {
	fs.BoolVar(&f.recorder, "recorder", true, "keep a flight recorder and take captures (false disables recorder, captures and incident rules)")
	fs.DurationVar(&c.Window, "recorder-window", 10*time.Minute, "the flight recorder keeps this `duration` of events and snapshots")
	fs.StringVar(&f.bytes, "recorder-bytes", "64MiB", "... or at most this many `bytes` (suffixes KiB, MiB, GiB), whichever bound comes first")
	fs.StringVar(&c.CaptureDir, "capture-dir", DefaultCaptureDir, "`directory` for captures (created 0700)")
	fs.IntVar(&c.CaptureKeep, "capture-keep", 20, "keep at most this `many` captures; the oldest go first")
	fs.StringVar(&f.captureBytes, "capture-max-bytes", "1GiB", "keep at most this many `bytes` of captures")
	fs.StringVar(&f.rules, "incident-rules", DefaultIncidentRules, "comma-separated `rules` that trigger a capture, or none")
	fs.DurationVar(&c.IncidentDuration, "incident-duration", 30*time.Second, "an incident capture records this `duration` after the incident")
	fs.DurationVar(&c.IncidentCooldown, "incident-cooldown", 5*time.Minute, "no new incident capture for this `duration` after one ends")
	fs.DurationVar(&c.CopyUpThreshold, "incident-copy-up-threshold", time.Second, "a copy-up slower than this `duration` is an incident")
}

func (c *Forensics) finish(f *forensicsFlags) error {
	c.Enabled = f.recorder
	var err error
	if c.MaxBytes, err = ParseBytes(f.bytes); err != nil || c.MaxBytes <= 0 {
		return fmt.Errorf("-recorder-bytes %q: want a positive size such as 64MiB", f.bytes)
	}
	if c.CaptureMaxBytes, err = ParseBytes(f.captureBytes); err != nil || c.CaptureMaxBytes <= 0 {
		return fmt.Errorf("-capture-max-bytes %q: want a positive size such as 1GiB", f.captureBytes)
	}
	for name, d := range map[string]time.Duration{"recorder-window": c.Window, "incident-duration": c.IncidentDuration, "incident-copy-up-threshold": c.CopyUpThreshold} {
		if d <= 0 {
			return fmt.Errorf("-%s %v: must be positive", name, d)
		}
	}
	if c.IncidentCooldown < 0 {
		return fmt.Errorf("-incident-cooldown %v: must not be negative", c.IncidentCooldown)
	}
	if c.CaptureKeep < 1 {
		return fmt.Errorf("-capture-keep %d: must be at least 1", c.CaptureKeep)
	}
	if c.CaptureDir == "" {
		return fmt.Errorf("-capture-dir: must not be empty")
	}
	if f.rules != "none" {
		c.IncidentRules = splitList(f.rules)
	}
	if err := incident.ValidateRules(c.IncidentRules); err != nil {
		return fmt.Errorf("-incident-rules: %w, or none", err)
	}
	return nil
}

// ParseBytes reads a size: a plain number of bytes or one with a KiB, MiB or
// GiB suffix.
func ParseBytes(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
