package residue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const semHeader = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"

// crafted is what issue 17 bind-mounted over /proc/sysvipc/sem: valid arrays
// and unreadable lines by the hundred thousand.
func crafted(valid, bad int) string {
	var b strings.Builder
	b.WriteString(semHeader)
	for i := range valid {
		fmt.Fprintf(&b, "%10d %10d 600 1 0 0 0 0 0 1795974690\n", 0x0d4d0000+i%0xffff, i)
	}
	for i := range bad {
		fmt.Fprintf(&b, "garbage line %d\n", i)
	}
	return b.String()
}

// 100k valid arrays and 100k unreadable lines: a bounded inventory and a few
// problem lines, whatever the file holds; two-field lines and times JSON
// cannot encode are not arrays.
func TestParseSemProcBounded(t *testing.T) {
	arrays, bad, err := ParseSemProc(strings.NewReader(crafted(100_000, 100_000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(arrays) != MaxSemArrays {
		t.Errorf("%d arrays, want the first %d", len(arrays), MaxSemArrays)
	}
	if len(bad) != maxBadExamples+2 || bad[maxBadExamples] != fmt.Sprintf("%d more unreadable lines", 100_000-maxBadExamples) ||
		bad[maxBadExamples+1] != fmt.Sprintf("%d arrays past the first %d ignored", 100_000-MaxSemArrays, MaxSemArrays) {
		t.Errorf("bad = %q, want %d examples and two counts", bad, maxBadExamples)
	}
	for _, line := range []string{
		"1 2\n",                              // two fields were accepted as an array
		"1 2 600 1 0 0 0 0 0 253402300800\n", // ctime in year 10000
		"1 2 600 1 0 0 0 0 -5 1795974690\n",
	} {
		arrays, bad, _ := ParseSemProc(strings.NewReader(semHeader + line))
		if len(arrays) != 0 || len(bad) != 1 {
			t.Errorf("%q: arrays %+v, bad %q; want it refused", line, arrays, bad)
		}
	}
}

// The same unreadable lines at every scan were logged again every time
// (500k WARN lines in 5 s); now a few lines, once, until they change.
func TestBadSemLinesLoggedOnceUntilTheyChange(t *testing.T) {
	d, now, logs := fakeDetector(t, crafted(10, 100_000), noLinks)
	for range 5 {
		d.Reconcile(context.Background())
		*now = now.Add(time.Second)
	}
	if n := strings.Count(logs.String(), "skipping unreadable line"); n != maxBadExamples+1 {
		t.Errorf("%d warning lines after 5 scans, want %d (the examples and the count, once):\n%.2000s", n, maxBadExamples+1, logs.String())
	}
	semOf(d).readProc = func() ([]byte, error) { return []byte(crafted(10, 7)), nil }
	d.Reconcile(context.Background())
	if !strings.Contains(logs.String(), "4 more unreadable lines") {
		t.Errorf("a change was not logged:\n%.3000s", logs.String())
	}
}

// 100k arrays made /residue answer 65 MB: each list is capped, with a count
// of what was left out, and the document encodes.
func TestResidueReportCapped(t *testing.T) {
	d, now, _ := fakeDetector(t, crafted(5000, 0), noLinks)
	d.Reconcile(context.Background())
	*now = now.Add(2 * time.Minute)
	rep := d.Report()
	if len(rep.Semaphores()) != MaxReportItems || rep.Omitted["semaphores"] != 5000-MaxReportItems {
		t.Errorf("%d semaphores, omitted %v; want %d and %d omitted", len(rep.Semaphores()), rep.Omitted, MaxReportItems, 5000-MaxReportItems)
	}
	if len(rep.Residue) != MaxReportItems || rep.Omitted["residue"] != 5000-MaxReportItems {
		t.Errorf("%d residue items, omitted %v; want %d and %d omitted", len(rep.Residue), rep.Omitted, MaxReportItems, 5000-MaxReportItems)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("/residue for 5000 arrays: %d KB", buf.Len()>>10)
}
