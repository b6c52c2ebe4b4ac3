package syscalls

import (
	"runtime"
	"strconv"
)

// Table names the syscall numbers of one architecture.
type Table struct {
	arch  string
	names []string // indexed by number; "" where the number is unassigned
}

// The tables the generated files define, by GOARCH.
var tables = map[string]*Table{
	"amd64": {arch: "amd64", names: amd64Names[:]},
	"arm64": {arch: "arm64", names: arm64Names[:]},
}

// ForArch returns the table of a GOARCH, or false for an architecture without one.
func ForArch(goarch string) (*Table, bool) {
	t, ok := tables[goarch]
	return t, ok
}

// Native is the table of the architecture the binary runs on: the one whose
// numbers its BPF programs read from the kernel. It is nil on an architecture
// without a table, and every number then gets the fallback name.
var Native, _ = ForArch(runtime.GOARCH)

// Arch is the table's GOARCH.
func (t *Table) Arch() string { return t.arch }

// Name names a syscall number, or "syscall_N" for one the table does not know
// (a nil table knows none).
func (t *Table) Name(nr int64) string {
	if t != nil && nr >= 0 && nr < int64(len(t.names)) && t.names[nr] != "" {
		return t.names[nr]
	}
	return "syscall_" + strconv.FormatInt(nr, 10)
}

// Number returns a syscall's number by its name, or false if the
// architecture has no syscall of that name (arm64 has no rename or open).
func (t *Table) Number(name string) (int64, bool) {
	if t == nil {
		return 0, false
	}
	for nr, n := range t.names {
		if n == name {
			return int64(nr), true
		}
	}
	return 0, false
}

// Name names a syscall number of the running architecture.
func Name(nr int64) string { return Native.Name(nr) }
