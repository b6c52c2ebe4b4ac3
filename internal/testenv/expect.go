package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvModesFile names the attach-mode expectations file. The VM guest's /init
// sets it; on the host the file is found from the module root when unset.
const EnvModesFile = "OBSERVER_MODES_FILE"

// ModesFile is the expectations file relative to the module root.
const ModesFile = "testdata/vmtest/modes.txt"

// hostPrefix marks a row for the host, keyed by a glob over uname -r.
const hostPrefix = "host:"

// ModesRow is one line of the expectations file.
type ModesRow struct {
	Kernel string   // matrix name, or "host:<release glob>"
	Modes  []string // modes the kernel must offer; the others must be refused
	// Except lists "sensor/mode" pairs written -sensor/mode: the kernel offers
	// the mode, but not to that sensor (fentry on a module function where
	// modules have no BTF).
	Except []string
}

// ParseModes reads "<kernel> <mode>..." lines; blank lines and # comments are
// ignored.
func ParseModes(r io.Reader) ([]ModesRow, error) {
	var rows []ModesRow
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want a kernel and at least one mode", n)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("line %d: duplicate kernel %q", n, f[0])
		}
		seen[f[0]] = true
		if g, ok := strings.CutPrefix(f[0], hostPrefix); ok {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("line %d: bad release glob %q: %w", n, g, err)
			}
		}
		row := ModesRow{Kernel: f[0]}
		for _, tok := range f[1:] {
			if ex, ok := strings.CutPrefix(tok, "-"); ok {
				if sensor, mode, ok := strings.Cut(ex, "/"); !ok || sensor == "" || mode == "" {
					return nil, fmt.Errorf("line %d: exception %q: want -sensor/mode", n, tok)
				}
				row.Except = append(row.Except, ex)
				continue
			}
			row.Modes = append(row.Modes, tok)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// MatchModes picks the row for a VM kernel name (vm != "") or, on the host,
// for the running kernel's release. ok is false when no row applies.
func MatchModes(rows []ModesRow, vm, release string) (modes []string, ok bool) {
	r, ok := matchRow(rows, vm, release)
	return r.Modes, ok
}

func matchRow(rows []ModesRow, vm, release string) (ModesRow, bool) {
	for _, r := range rows {
		g, host := strings.CutPrefix(r.Kernel, hostPrefix)
		if vm != "" && !host && r.Kernel == vm {
			return r, true
		}
		if vm == "" && host {
			if m, _ := path.Match(g, release); m {
				return r, true
			}
		}
	}
	return ModesRow{}, false
}

// ForSensor is the row's modes less its exceptions for one sensor.
func (r ModesRow) ForSensor(sensor string) []string {
	var out []string
	for _, m := range r.Modes {
		if !slices.Contains(r.Except, sensor+"/"+m) {
			out = append(out, m)
		}
	}
	return out
}

// ExpectedModes returns the attach modes this kernel is expected to offer,
// from the expectations file. ok is false when the file has no row for it
// (an unlisted host); an unreadable or malformed file is an error.
func ExpectedModes() (modes []string, ok bool, err error) { return ExpectedSensorModes("") }

// ExpectedSensorModes is ExpectedModes for one sensor: without the modes the
// row excepts for it ("" for none).
func ExpectedSensorModes(sensor string) (modes []string, ok bool, err error) {
	file := os.Getenv(EnvModesFile)
	if file == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, false, err
		}
		file = filepath.Join(root, ModesFile)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, false, fmt.Errorf("attach-mode expectations: %w", err)
	}
	defer f.Close()
	rows, err := ParseModes(f)
	if err != nil {
		return nil, false, fmt.Errorf("attach-mode expectations %s: %w", file, err)
	}
	row, ok := matchRow(rows, VMKernel(), KernelRelease())
	return row.ForSensor(sensor), ok, nil
}

// KernelRelease is uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// moduleRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("attach-mode expectations: no go.mod above the working directory; set " + EnvModesFile)
		}
		dir = parent
	}
}
