package vmtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Outcome is the verdict for one test or test binary.
type Outcome string

const (
	Pass Outcome = "PASS"
	Fail Outcome = "FAIL"
	Skip Outcome = "SKIP"
)

// TestLine is one "--- PASS/FAIL/SKIP: TestX" line.
type TestLine struct {
	Name    string
	Outcome Outcome
}

// BinaryResult is what one test binary did in the guest.
type BinaryResult struct {
	Name     string
	Started  bool
	Ended    bool
	ExitCode int
	Tests    []TestLine
}

// Console accumulates what the guest printed, one line at a time.
type Console struct {
	Booted       bool
	Release      string
	Done         bool
	Panic        string   // first "Kernel panic" line
	Oops         []string // BUG:/Oops: lines; a sensor must not cause these
	InsmodFailed []string
	Binaries     []*BinaryResult
	Results      []map[string]any // OBSERVER-RESULT objects
	BadResults   []string         // result lines that were not JSON objects
	current      *BinaryResult
	kernel       string
}

// NewConsole starts a parser for kernel name (used to tag results).
func NewConsole(kernel string) *Console { return &Console{kernel: kernel} }

var testLineRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// Line feeds one console line (without its newline).
func (c *Console) Line(line string) {
	line = strings.TrimRight(line, "\r")
	// Markers are searched anywhere in the line: a kernel message on the same
	// serial port can share a line with them.
	if i := strings.Index(line, resultPrefix); i >= 0 {
		c.result(line[i+len(resultPrefix):])
		return
	}
	if i := strings.Index(line, markerPrefix); i >= 0 {
		c.marker(line[i:])
		return
	}
	if m := testLineRE.FindStringSubmatch(line); m != nil && c.current != nil {
		c.current.Tests = append(c.current.Tests, TestLine{Name: m[2], Outcome: Outcome(m[1])})
		return
	}
	switch {
	case strings.Contains(line, "Kernel panic - not syncing"):
		if c.Panic == "" {
			c.Panic = strings.TrimSpace(line)
		}
	case strings.Contains(line, "BUG: "), strings.Contains(line, "Oops: "):
		c.Oops = append(c.Oops, strings.TrimSpace(line))
	}
}

func (c *Console) marker(m string) {
	f := strings.Fields(strings.TrimPrefix(m, markerPrefix))
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "BOOTED":
		c.Booted = true
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "release="); ok {
				c.Release = v
			}
		}
	case "INSMOD-FAILED":
		if len(f) > 1 {
			c.InsmodFailed = append(c.InsmodFailed, f[1])
		}
	case "BEGIN":
		if len(f) > 1 {
			c.current = &BinaryResult{Name: f[1], Started: true}
			c.Binaries = append(c.Binaries, c.current)
		}
	case "END":
		if len(f) < 3 || c.current == nil || c.current.Name != f[1] {
			return
		}
		code, err := strconv.Atoi(strings.TrimPrefix(f[2], "exit="))
		if err != nil {
			code = -1
		}
		c.current.Ended, c.current.ExitCode = true, code
		c.current = nil
	case "DONE":
		c.Done = true
	}
}

func (c *Console) result(s string) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &obj); err != nil || obj == nil {
		c.BadResults = append(c.BadResults, s)
		return
	}
	if _, ok := obj["kernel"]; !ok {
		obj["kernel"] = c.kernel
	}
	if _, ok := obj["binary"]; !ok && c.current != nil {
		obj["binary"] = c.current.Name
	}
	c.Results = append(c.Results, obj)
}

// Problems lists every reason the run failed; empty means it passed.
func (c *Console) Problems(want []string) []string {
	var p []string
	if c.Panic != "" {
		p = append(p, "kernel panic: "+c.Panic)
	}
	for _, o := range c.Oops {
		p = append(p, "kernel error: "+o)
	}
	if !c.Booted {
		p = append(p, "guest never reached the test runner (no BOOTED marker)")
	}
	for _, m := range c.InsmodFailed {
		p = append(p, "insmod failed: "+m)
	}
	ran := map[string]*BinaryResult{}
	for _, b := range c.Binaries {
		ran[b.Name] = b
	}
	for _, name := range want {
		b := ran[name]
		switch {
		case b == nil:
			p = append(p, fmt.Sprintf("%s: never started", name))
		case !b.Ended:
			p = append(p, fmt.Sprintf("%s: no end marker (guest died or timed out while it ran)", name))
		case b.ExitCode != 0:
			p = append(p, fmt.Sprintf("%s: exit status %d", name, b.ExitCode))
		}
		if b != nil {
			for _, t := range b.Tests {
				if t.Outcome == Fail {
					p = append(p, fmt.Sprintf("%s: --- FAIL: %s", name, t.Name))
				}
			}
		}
	}
	if !c.Done && c.Booted {
		p = append(p, "no DONE marker: the guest stopped before finishing")
	}
	for _, r := range c.BadResults {
		p = append(p, "malformed OBSERVER-RESULT line: "+r)
	}
	return p
}
