package capture_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/capture/hostile"
)

// The 80 KB capture of five gzip members of 16 MiB of `{}` lines (27.9 M
// records of no known kind) took 4.2 GB and printed 28 M warning lines: the
// reader kept one warning per record and an index of every line. Now it is
// one counted warning, and the heap stays near one member's size.
func TestJunkMembersBoundedWarningsAndMemory(t *testing.T) {
	var file bytes.Buffer
	if err := hostile.JunkMembers(&file, "{}", 5); err != nil {
		t.Fatal(err)
	}
	var warns []string
	var records int
	var readErr error
	peak := hostile.PeakHeap(func() {
		r, err := capture.NewReader(bytes.NewReader(file.Bytes()))
		if err != nil {
			readErr = err
			return
		}
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				readErr = err
				return
			}
			records++
		}
		warns = r.Warnings()
	})
	if readErr != nil {
		t.Fatal(readErr)
	}
	t.Logf("%d KB file: peak heap %d MiB, %d warnings: %q", file.Len()>>10, peak>>20, len(warns), warns)
	if records != 0 {
		t.Errorf("%d records decoded from junk", records)
	}
	want := fmt.Sprintf(`%d records of unknown kind "" skipped, the first in member 2`, hostile.JunkLines("{}", 5))
	if len(warns) != 2 || warns[0] != want || !strings.Contains(warns[1], "no end record") {
		t.Errorf("warnings = %q, want [%q, no end record]", warns, want)
	}
	if peak > 128<<20 {
		t.Errorf("peak heap %d MiB reading an %d KB file, want at most 128 MiB (members are at most 16 MiB)", peak>>20, file.Len()>>10)
	}
}

// Distinct problems are bounded too: a file whose every record is a new
// unknown kind or event type gives at most a few dozen warning lines.
func TestWarningKindsBounded(t *testing.T) {
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.Header{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		w.WriteEvent([]byte(fmt.Sprintf(`{"time":"2026-03-01T03:00:00Z","type":"t%d","pid":1}`, i)))
	}
	w.Close(capture.End{})
	r, err := capture.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		n++
	}
	warns := r.Warnings()
	if n != 10001 || len(warns) > 40 {
		t.Fatalf("%d records, %d warnings, want 10001 records (unknown events are kept) and at most 40 warnings", n, len(warns))
	}
	if last := warns[len(warns)-1]; !strings.HasPrefix(last, "9968 more problems of other kinds") {
		t.Errorf("last warning %q, want the count of the kinds not listed", last)
	}
}
