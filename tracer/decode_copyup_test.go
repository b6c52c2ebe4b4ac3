package tracer

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/syscalls"
)

func copyUpRecord(names ...string) copyupCopyUpEvent {
	var r copyupCopyUpEvent
	r.Hdr.Type = uint16(copyupEventTypeEVENT_COPY_UP)
	for i, n := range names { // leaf first, as the BPF program walks
		for j := 0; j < len(n); j++ {
			r.Names[i][j] = int8(n[j])
		}
	}
	r.Depth = uint8(len(names))
	return r
}

func decodeRecord(t *testing.T, r *copyupCopyUpEvent) *event.CopyUp {
	t.Helper()
	raw := unsafe.Slice((*byte)(unsafe.Pointer(r)), unsafe.Sizeof(*r))
	ev, err := decodeCopyUp(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev.(*event.CopyUp)
}

func TestDecodeCopyUp(t *testing.T) {
	r := copyUpRecord("big", "lib", "var")
	r.Size, r.Bytes, r.DurationNs = 100, 40, 7
	r.Ret = -int32(unix.ENOSPC)
	openat, _ := syscalls.Native.Number("openat")
	r.SyscallNr = openat
	r.HaveLower, r.HaveMode, r.Mode, r.Nlink = 1, 1, unix.S_IFREG|0o644, 2
	e := decodeRecord(t, &r)
	if e.Path != "/var/lib/big" || e.Result != "ENOSPC" || e.Errno != 28 || e.Trigger != "openat" ||
		e.FileType != "regular" || *e.Size != 100 || e.BytesCopied != 40 || e.DurationNS != 7 {
		t.Errorf("decoded %+v", e)
	}
	if *e.HardlinksBroken {
		t.Error("a failed copy-up broke no links")
	}

	r.Ret = 0
	if e := decodeRecord(t, &r); e.Result != "ok" || e.Errno != 0 || !*e.HardlinksBroken || *e.MetadataOnly {
		t.Errorf("ok copy-up of a file with 2 links: %+v", e)
	}
	r.Indexed = 1
	if e := decodeRecord(t, &r); *e.HardlinksBroken {
		t.Error("index=on keeps hard links together")
	}
	r.Indexed, r.Mode = 0, unix.S_IFDIR|0o755
	if e := decodeRecord(t, &r); *e.HardlinksBroken || e.FileType != "directory" {
		t.Errorf("a directory's link count is not hard links: %+v", e)
	}
	r.Mode, r.Metacopy = unix.S_IFREG|0o600, 1
	if e := decodeRecord(t, &r); !*e.MetadataOnly {
		t.Error("metacopy not decoded")
	}
	r.HaveLower, r.HaveMode = 0, 0
	if e := decodeRecord(t, &r); e.FileType != "" || e.MetadataOnly != nil || e.HardlinksBroken != nil || e.Size != nil || e.Nlink != nil {
		t.Errorf("without the lower inode nothing about it is known: %+v", e)
	}
	// vmlinux_only: the file type from the overlay inode, the rest absent.
	r.HaveMode = 1
	e = decodeRecord(t, &r)
	if e.FileType != "regular" || e.MetadataOnly != nil || e.HardlinksBroken != nil || e.Size != nil || e.Nlink != nil {
		t.Errorf("vmlinux_only record: %+v, want the file type and nothing of the lower inode", e)
	}
	line, _ := json.Marshal(e)
	for _, k := range []string{`"size"`, `"nlink"`, `"metadata_only"`, `"hardlinks_broken"`} {
		if strings.Contains(string(line), k) {
			t.Errorf("unknown %s is in the JSON (as a zero?): %s", k, line)
		}
	}

	deep := copyUpRecord("8", "7", "6", "5", "4", "3", "2", "1")
	deep.Truncated = 1
	if e := decodeRecord(t, &deep); e.Path != ".../1/2/3/4/5/6/7/8" {
		t.Errorf("truncated path = %q", e.Path)
	}
	root := copyUpRecord()
	if e := decodeRecord(t, &root); e.Path != "/" {
		t.Errorf("root path = %q", e.Path)
	}
	bad := copyUpRecord("x")
	bad.Depth = 200 // never index past the array
	if e := decodeRecord(t, &bad); e.Path == "" {
		t.Error("bad depth")
	}
	if _, err := decodeCopyUp(make([]byte, 10)); err == nil {
		t.Error("short record decoded")
	}
}

// TestCopyUpSyscallMarkers: the BPF program's negative triggers and an
// unknown number get names of their own (the x/sys check of the numbers is
// per architecture: decode_copyup_amd64_test.go).
func TestCopyUpSyscallMarkers(t *testing.T) {
	for _, c := range []struct {
		nr   int64
		want string
	}{{-1, "kernel"}, {-2, "io_uring"}, {99999, "syscall_99999"}} {
		if got := syscallName(c.nr); got != c.want {
			t.Errorf("syscallName(%d) = %q, want %q", c.nr, got, c.want)
		}
	}
}

// checkSyscallNames compares the trigger names with x/sys's numbers for this
// architecture (decode_copyup_<arch>_test.go lists them), so a table wrong for
// the architecture cannot name the wrong syscall.
func checkSyscallNames(t *testing.T, want map[string]int64) {
	t.Helper()
	for name, nr := range want {
		if got := syscallName(nr); got != name {
			t.Errorf("syscall %d = %q, want %q", nr, got, name)
		}
	}
}
