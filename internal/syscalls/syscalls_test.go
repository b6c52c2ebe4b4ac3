package syscalls

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestTables(t *testing.T) {
	for _, c := range []struct {
		arch string
		nr   int64
		name string
	}{
		{"amd64", 0, "read"}, {"amd64", 2, "open"}, {"amd64", 82, "rename"}, {"amd64", 110, "getppid"},
		{"amd64", 316, "renameat2"}, {"amd64", 463, "setxattrat"}, {"amd64", 9999, "syscall_9999"},
		{"arm64", 38, "renameat"}, {"arm64", 56, "openat"}, {"arm64", 63, "read"}, {"arm64", 173, "getppid"},
		{"arm64", 276, "renameat2"}, {"arm64", 463, "setxattrat"}, {"arm64", 9999, "syscall_9999"},
		{"arm64", -1, "syscall_-1"},
	} {
		tab, ok := ForArch(c.arch)
		if !ok {
			t.Fatalf("no table for %s", c.arch)
		}
		if got := tab.Name(c.nr); got != c.name {
			t.Errorf("%s: Name(%d) = %q, want %q", c.arch, c.nr, got, c.name)
		}
	}
}

// arm64 has only the *at forms: the rename and open sensors must hook those.
func TestArm64HasNoLegacyCalls(t *testing.T) {
	arm, _ := ForArch("arm64")
	for _, name := range []string{"rename", "open", "creat", "mkdir", "unlink"} {
		if nr, ok := arm.Number(name); ok {
			t.Errorf("arm64 has %s (%d)", name, nr)
		}
	}
	if nr, ok := arm.Number("renameat2"); !ok || nr != 276 {
		t.Errorf("arm64 renameat2 = %d, %v; want 276", nr, ok)
	}
}

// The running architecture's table agrees with the numbers this binary's
// golang.org/x/sys was compiled with.
func TestNativeMatchesUnix(t *testing.T) {
	if Native == nil {
		t.Skip("no syscall table for this architecture")
	}
	for nr, name := range map[int64]string{
		unix.SYS_READ: "read", unix.SYS_OPENAT: "openat", unix.SYS_RENAMEAT2: "renameat2",
		unix.SYS_GETPPID: "getppid", unix.SYS_NANOSLEEP: "nanosleep", unix.SYS_IO_URING_ENTER: "io_uring_enter",
	} {
		if got := Name(nr); got != name {
			t.Errorf("Name(%d) = %q, want %q", nr, got, name)
		}
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if got := tab.Name(3); got != "syscall_3" {
		t.Errorf("nil table: Name(3) = %q", got)
	}
	if _, ok := tab.Number("read"); ok {
		t.Error("nil table knows read")
	}
	if _, ok := ForArch("mips"); ok {
		t.Error("mips has a table")
	}
}
