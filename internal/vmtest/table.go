package vmtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// The README's attach-mode table sits between these markers; `make
// matrix-table` rewrites it from a run and `make test` checks it.
const (
	TableBegin = "<!-- matrix:begin -->"
	TableEnd   = "<!-- matrix:end -->"
)

// requestedDefault marks a result for a sensor started without forcing a mode
// (tracer's TestDefaultModes).
const requestedDefault = "default"

// modeOrder is the tracer's preference order (tracer.Modes), for listing the
// other modes in a cell; a mode it does not know is listed after these.
var modeOrder = []string{"fentry", "kprobe", "tp_btf", "raw_tracepoint", "tail_call", "tracepoint"}

// ModeResult is one attach-mode OBSERVER-RESULT line of the tracer tests.
type ModeResult struct {
	Kernel      string `json:"kernel"` // uname -r
	Sensor      string `json:"sensor"`
	Requested   string `json:"requested"` // a mode, or "default"
	Mode        string `json:"mode"`      // what it got, "" when unavailable
	Variant     string `json:"variant"`   // how it adapted to the kernel, "" for sensors with one form
	Unavailable string `json:"unavailable"`
}

// Column is one kernel of the table: a header and that kernel's results.
type Column struct {
	Header  string
	Results []ModeResult
}

// ReadModeResults reads a results.jsonl file and keeps the attach-mode
// results; other tests' lines (no sensor or requested) are skipped.
func ReadModeResults(path string) ([]ModeResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ModeResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r ModeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if r.Sensor != "" && r.Requested != "" {
			out = append(out, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// HostHeader names the host column after its kernel's major.minor, which a
// kernel update within a series does not change.
func HostHeader(results []ModeResult) string {
	for _, r := range results {
		if f := strings.SplitN(r.Kernel, ".", 3); len(f) >= 2 && r.Kernel != "" {
			return "host " + f[0] + "." + strings.TrimRightFunc(f[1], func(c rune) bool { return c < '0' || c > '9' })
		}
	}
	return "host"
}

// sensorModes is what one kernel gave one sensor.
type sensorModes struct {
	def      string            // mode chosen when not forced, "" = unavailable
	variant  string            // the default mode's variant
	attached map[string]bool   // forced mode -> attached
	reasons  map[string]string // forced mode -> why it was unavailable
}

func collect(col Column) (map[string]*sensorModes, error) {
	bySensor := map[string]*sensorModes{}
	haveDefault := map[string]bool{}
	for _, r := range col.Results {
		s := bySensor[r.Sensor]
		if s == nil {
			s = &sensorModes{attached: map[string]bool{}, reasons: map[string]string{}}
			bySensor[r.Sensor] = s
		}
		if r.Requested == requestedDefault {
			if haveDefault[r.Sensor] && s.def != r.Mode {
				return nil, fmt.Errorf("%s: sensor %s got default mode %q and %q in one run", col.Header, r.Sensor, s.def, r.Mode)
			}
			s.def, s.variant, haveDefault[r.Sensor] = r.Mode, r.Variant, true
			continue
		}
		ok := r.Mode != ""
		if prev, seen := s.attached[r.Requested]; seen && prev != ok {
			return nil, fmt.Errorf("%s: sensor %s both attached and failed in mode %s in one run", col.Header, r.Sensor, r.Requested)
		}
		s.attached[r.Requested] = ok
		if !ok {
			s.reasons[r.Requested] = strings.TrimPrefix(r.Unavailable, r.Requested+": ")
		}
	}
	for name := range bySensor {
		if !haveDefault[name] {
			return nil, fmt.Errorf("%s: no default-mode result for sensor %s (a partial run? run the tracer tests in full)", col.Header, name)
		}
	}
	return bySensor, nil
}

// cell is "default (other modes that attached when forced)".
func (s *sensorModes) cell() string {
	def := s.def
	if def == "" {
		def = "unavailable"
	}
	var others []string
	for m, ok := range s.attached {
		if ok && m != s.def {
			others = append(others, m)
		}
	}
	sortModes(others)
	if len(others) == 0 {
		return def
	}
	return def + " (" + strings.Join(others, ", ") + ")"
}

func sortModes(ms []string) {
	rank := func(m string) int {
		if i := slices.Index(modeOrder, m); i >= 0 {
			return i
		}
		return len(modeOrder)
	}
	sort.Slice(ms, func(i, j int) bool {
		if ri, rj := rank(ms[i]), rank(ms[j]); ri != rj {
			return ri < rj
		}
		return ms[i] < ms[j]
	})
}

// RenderTable renders the markdown block that goes between the markers: one
// row per sensor, one column per kernel, then why each refused mode was refused.
func RenderTable(cols []Column) (string, error) {
	if len(cols) == 0 {
		return "", errors.New("no kernels")
	}
	perCol := make([]map[string]*sensorModes, len(cols))
	var sensors []string
	for i, c := range cols {
		if len(c.Results) == 0 {
			return "", fmt.Errorf("%s: no attach-mode results", c.Header)
		}
		m, err := collect(c)
		if err != nil {
			return "", err
		}
		perCol[i] = m
		for s := range m {
			if !slices.Contains(sensors, s) {
				sensors = append(sensors, s)
			}
		}
	}
	sort.Strings(sensors)
	var b strings.Builder
	b.WriteString("<!-- generated by `make matrix-table` from .vmtest/*/results.jsonl; `make test` checks it -->\n")
	b.WriteString("| sensor |")
	for _, c := range cols {
		b.WriteString(" " + c.Header + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, s := range sensors {
		b.WriteString("| `" + s + "` |")
		for i, c := range cols {
			sm := perCol[i][s]
			if sm == nil {
				return "", fmt.Errorf("%s: no results for sensor %s", c.Header, s)
			}
			b.WriteString(" " + sm.cell() + " |")
		}
		b.WriteString("\n")
	}
	var notes []string
	for i, c := range cols {
		var refused []string
		reason := map[string]string{}
		for _, s := range sensors {
			for m, r := range perCol[i][s].reasons {
				if _, seen := reason[m]; !seen {
					refused = append(refused, m)
					reason[m] = "`" + s + "`: " + r
				}
			}
		}
		sortModes(refused)
		for _, m := range refused {
			notes = append(notes, fmt.Sprintf("- %s, %s: %s", c.Header, m, strings.ReplaceAll(reason[m], "|", `\|`)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nModes the kernel refused (first refusal per mode, as reported):\n\n")
		b.WriteString(strings.Join(notes, "\n") + "\n")
	}
	var variants []string
	for i, c := range cols {
		var vs []string
		for _, s := range sensors {
			if v := perCol[i][s].variant; v != "" {
				vs = append(vs, "`"+s+"` "+v)
			}
		}
		if len(vs) > 0 {
			variants = append(variants, fmt.Sprintf("- %s: %s", c.Header, strings.Join(vs, ", ")))
		}
	}
	if len(variants) > 0 {
		b.WriteString("\nVariants of the default modes (what the sensor probed at load, as in `/status`):\n\n")
		b.WriteString(strings.Join(variants, "\n") + "\n")
	}
	return b.String(), nil
}

// Block is a generated part of a document between two marker lines.
type Block struct{ Begin, End string }

// MatrixBlock is the README's attach-mode table.
var MatrixBlock = Block{TableBegin, TableEnd}

// span finds the text between the markers.
func (m Block) span(doc string) (start, end int, err error) {
	if strings.Count(doc, m.Begin) != 1 || strings.Count(doc, m.End) != 1 {
		return 0, 0, fmt.Errorf("want exactly one %s and one %s", m.Begin, m.End)
	}
	start = strings.Index(doc, m.Begin) + len(m.Begin)
	end = strings.Index(doc, m.End)
	if end < start {
		return 0, 0, fmt.Errorf("%s comes before %s", m.End, m.Begin)
	}
	return start, end, nil
}

// Replace puts block between the markers.
func (m Block) Replace(doc, block string) (string, error) {
	start, end, err := m.span(doc)
	if err != nil {
		return "", err
	}
	return doc[:start] + "\n" + block + doc[end:], nil
}

// Check returns "" when the text between the markers is block, else a line
// diff (- in the document, + from the run).
func (m Block) Check(doc, block string) (diff string, err error) {
	start, end, err := m.span(doc)
	if err != nil {
		return "", err
	}
	have := strings.TrimPrefix(doc[start:end], "\n")
	if have == block {
		return "", nil
	}
	return lineDiff(splitLines(have), splitLines(block)), nil
}

// ReplaceTable puts the attach-mode table between its markers.
func ReplaceTable(doc, block string) (string, error) { return MatrixBlock.Replace(doc, block) }

// CheckTable compares the attach-mode table with block (see Block.Check).
func CheckTable(doc, block string) (diff string, err error) { return MatrixBlock.Check(doc, block) }

func splitLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineDiff is a longest-common-subsequence diff; the tables are a few lines.
func lineDiff(a, b []string) string {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("- " + a[i] + "\n")
			i++
		default:
			out.WriteString("+ " + b[j] + "\n")
			j++
		}
	}
	return out.String()
}
