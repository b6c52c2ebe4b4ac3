package incident

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/event"
	"github.com/observer-dev/observer/internal/recorder"
	"github.com/observer-dev/observer/internal/testenv"
)

// A capture that hit ENOSPC before its first member left a 0-byte file and
// said little. On a real full tmpfs it is now an error that says so, and no
// empty file stays behind to crowd the rotation.
func TestCaptureOnAFullDiskLeavesNoEmptyFile(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	testenv.SmallTmpfs(t, dir, "64k")
	store, err := OpenStore(filepath.Join(dir, "caps"), 10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ff, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ff.Write(make([]byte, 1024)); err != nil {
			break
		}
	}
	ff.Close()
	rec, _ := recorder.New(recorder.Options{})
	rec.Record(&event.RenameExdev{Header: event.Header{Time: time.Now(), Type: event.TypeRenameExdev}, OldPath: "/a"})
	m := NewManager(Options{Recorder: rec, Store: store})
	res, err := m.toFile(t.Context(), "http", "manual", 0)
	if !errors.Is(err, syscall.ENOSPC) || res.Error == "" || res.File != "" {
		t.Errorf("result %+v, err %v; want ENOSPC, an error in the result and no file", res, err)
	}
	if files, _ := store.List(); len(files) != 0 {
		t.Errorf("left %v behind", files)
	}
}
