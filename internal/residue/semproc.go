package residue

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SemProcPath shows the System V semaphore arrays of the reader's IPC namespace.
const SemProcPath = "/proc/sysvipc/sem"

// dmCookiePrefix marks devicemapper's udev cookie semaphores: libdevmapper
// builds their keys as 0x0d4d << 16 | cookie.
const dmCookiePrefix = 0x0d4d

// Kinds of semaphore arrays.
const (
	KindDMUdevCookie = "dm_udev_cookie"
	KindOther        = "other"
)

// SemKind classifies an array by its key.
func SemKind(key int32) string {
	if uint32(key)>>16 == dmCookiePrefix {
		return KindDMUdevCookie
	}
	return KindOther
}

// FormatKey prints a key the way ipcs does.
func FormatKey(key int32) string { return fmt.Sprintf("0x%08x", uint32(key)) }

// SemArray is one line of /proc/sysvipc/sem.
type SemArray struct {
	Key   int32
	SemID int32
	Perms uint32
	NSems int32
	UID   uint32
	CUID  uint32
	CTime time.Time // creation, or the last IPC_SET
	OTime time.Time // last semop(2); zero when never operated on
}

// semColumns is the kernel's layout since 2.6; used when the header is missing.
var semColumns = []string{"key", "semid", "perms", "nsems", "uid", "gid", "cuid", "cgid", "otime", "ctime"}

// Bounds of one read of /proc/sysvipc/sem, which a crafted mount can fill
// with anything: MaxSemArrays is the kernel's default IPCMNI (no namespace
// holds more arrays unless booted with ipcmni_extend); maxBadExamples the
// unreadable lines quoted, the rest only counted.
const (
	MaxSemArrays   = 32768
	maxBadExamples = 3
)

// maxUnixTime is the last second JSON can encode (year 9999): a later ctime
// cannot be real, and would make every report fail to encode.
const maxUnixTime = 253402300799

// ParseSemProc reads /proc/sysvipc/sem. Columns are found by the header's
// names, so added or reordered columns do no harm; a line that cannot be read
// is skipped, never fatal. bad quotes the first few such lines and ends with
// a count of the others, and of arrays past MaxSemArrays (ignored): its
// length is bounded whatever the file holds.
func ParseSemProc(r io.Reader) (arrays []SemArray, bad []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	col := map[string]int{}
	for i, name := range semColumns {
		col[name] = i
	}
	lineNo, badLines, over := 0, 0, 0
	defer func() {
		if n := badLines - min(badLines, maxBadExamples); n > 0 {
			bad = append(bad, fmt.Sprintf("%d more unreadable lines", n))
		}
		if over > 0 {
			bad = append(bad, fmt.Sprintf("%d arrays past the first %d ignored", over, MaxSemArrays))
		}
	}()
	for sc.Scan() {
		lineNo++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lineNo == 1 && fields[0] == "key" {
			col = map[string]int{}
			for i, name := range fields {
				col[name] = i
			}
			for _, need := range []string{"key", "semid"} {
				if _, ok := col[need]; !ok {
					return nil, nil, fmt.Errorf("%s: header %q has no %q column", SemProcPath, sc.Text(), need)
				}
			}
			continue
		}
		a, err := parseSemLine(fields, col)
		if err != nil {
			if badLines++; badLines <= maxBadExamples {
				text := strings.TrimSpace(sc.Text())
				if len(text) > 200 {
					text = text[:200] + "..."
				}
				bad = append(bad, fmt.Sprintf("line %d %q: %v", lineNo, text, err))
			}
			continue
		}
		if len(arrays) >= MaxSemArrays {
			over++
			continue
		}
		arrays = append(arrays, a)
	}
	if err := sc.Err(); err != nil {
		return arrays, bad, fmt.Errorf("read %s: %w", SemProcPath, err)
	}
	return arrays, bad, nil
}

func parseSemLine(fields []string, col map[string]int) (SemArray, error) {
	var a SemArray
	// The kernel prints every column on every line: a shorter line is not an array.
	if len(fields) < len(col) {
		return a, fmt.Errorf("%d fields, want %d (one per column)", len(fields), len(col))
	}
	get := func(name string, required bool, _ int, set func(int64)) error {
		i, ok := col[name]
		if !ok {
			return nil
		}
		if i >= len(fields) {
			if required {
				return fmt.Errorf("no %s column (%d fields)", name, len(fields))
			}
			return nil
		}
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			if required {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}
		set(v)
		return nil
	}
	unixTime := func(v int64) time.Time {
		if v == 0 {
			return time.Time{}
		}
		return time.Unix(v, 0)
	}
	for _, f := range []struct {
		name     string
		required bool
		set      func(int64)
	}{
		// The kernel prints the key with %d: keys above 0x7fffffff are negative.
		{"key", true, func(v int64) { a.Key = int32(v) }},
		{"semid", true, func(v int64) { a.SemID = int32(v) }},
		{"perms", false, func(v int64) {
			// perms is printed in octal digits with %4o.
			p, _ := strconv.ParseUint(strconv.FormatInt(v, 10), 8, 32)
			a.Perms = uint32(p)
		}},
		{"nsems", false, func(v int64) { a.NSems = int32(v) }},
		{"uid", false, func(v int64) { a.UID = uint32(v) }},
		{"cuid", false, func(v int64) { a.CUID = uint32(v) }},
		{"otime", false, func(v int64) { a.OTime = unixTime(v) }},
		{"ctime", false, func(v int64) { a.CTime = unixTime(v) }},
	} {
		if err := get(f.name, f.required, 64, f.set); err != nil {
			return a, err
		}
	}
	if a.SemID < 0 {
		return a, fmt.Errorf("negative semid %d", a.SemID)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"ctime", a.CTime}, {"otime", a.OTime}} {
		if u := t.t.Unix(); !t.t.IsZero() && (u < 0 || u > maxUnixTime) {
			return a, fmt.Errorf("%s %d: not a time (before 1970 or after year 9999)", t.name, u)
		}
	}
	return a, nil
}

// SemLimits are the fields of /proc/sys/kernel/sem.
type SemLimits struct{ SEMMSL, SEMMNS, SEMOPM, SEMMNI int }

// ParseSemLimits reads /proc/sys/kernel/sem; SEMMNI (the 4th field) bounds the
// number of arrays per IPC namespace.
func ParseSemLimits(s string) (SemLimits, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return SemLimits{}, fmt.Errorf("kernel.sem %q: want 4 fields", strings.TrimSpace(s))
	}
	var v [4]int
	for i := range v {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			return SemLimits{}, fmt.Errorf("kernel.sem %q: %w", strings.TrimSpace(s), err)
		}
		v[i] = n
	}
	return SemLimits{v[0], v[1], v[2], v[3]}, nil
}
