package incident

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/event"
)

// Two daemons sharing a capture directory lost captures: one's rotation
// removed the other's capture while it was being written. The second store
// on a directory is now refused with one line naming the holder, until the
// first closes. An existing directory open to others is tightened to 0700.
func TestSecondStoreOnADirectoryIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "caps")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := OpenStore(dir, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("existing 0755 directory left %v, want 0700", fi.Mode().Perm())
	}
	_, err = OpenStore(dir, 3, 1<<20)
	want := fmt.Sprintf("pid %d holds %s", os.Getpid(), LockFile)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second store: %v, want one line wrapping ErrInUse with %q", err, want)
	}
	first.Create("x", time.Now())
	if files, _ := first.List(); len(files) != 1 {
		t.Errorf("the lock file counts as a capture: %v", files)
	}
	first.Close()
	second, err := OpenStore(dir, 3, 1<<20)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	second.Close()
}

// A capture whose file disappears while it is written (what a second daemon's
// rotation did) is an error in the JSON answer (500), not "bytes": 0 and 200.
func TestCaptureRemovedWhileWrittenIsAnError(t *testing.T) {
	m, rec, store := newManager(t, 0)
	rec.Record(&event.RenameExdev{Header: event.Header{Time: time.Now(), Type: event.TypeRenameExdev}, OldPath: "/a"})
	srv := httptest.NewServer(m)
	defer srv.Close()
	go func() {
		// Remove the capture as soon as it exists.
		for range 200 {
			if files, _ := store.List(); len(files) > 0 {
				os.Remove(files[0].Path)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	resp, err := http.Post(srv.URL+"?duration=500ms", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res Result
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(res.Error, "removed while it was being written") {
		t.Errorf("status %d, result %+v; want 500 with an error saying the file was removed", resp.StatusCode, res)
	}
}

// Two stream clients that never read held both manual capture slots for as
// long as they stayed connected (every manual capture 429, SIGUSR1 ignored).
// With a write deadline their captures end and the slots come back.
func TestStalledStreamClientsReleaseTheirSlots(t *testing.T) {
	defer func(d time.Duration) { StreamWriteTimeout = d }(StreamWriteTimeout)
	StreamWriteTimeout = 300 * time.Millisecond
	m, rec, _ := newManager(t, 0)
	// Random paths (gzip cannot shrink them): about 20 MB of capture, far
	// more than socket buffers hold.
	now := time.Now()
	for i := range 80000 {
		rec.Record(&event.RenameExdev{Header: event.Header{Time: now, Type: event.TypeRenameExdev, PID: uint32(i)}, OldPath: rand.Text() + rand.Text() + rand.Text() + rand.Text() + rand.Text() + rand.Text() + rand.Text() + rand.Text(), NewPath: rand.Text()})
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	for range maxManual {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		fmt.Fprintf(c, "POST /?duration=10m&stream=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		bufio.NewReader(c).Peek(1) // the capture has started; now never read again
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(srv.URL+"?duration=0s", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("manual capture: status %d; want 200 once the stalled streams are cut off", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
