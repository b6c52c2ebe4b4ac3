package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/residue"
	"github.com/observer-dev/observer/internal/server"
)

// TestCleanRefusesReplay: `observer residue --clean` against a replay would
// remove this machine's objects by another machine's ids; it refuses.
func TestCleanRefusesReplay(t *testing.T) {
	id := int32(7)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(residue.Report{Offline: true, Residue: []residue.Item{{Resource: residue.ResourceSem, Kind: residue.KindDMUdevCookie, SemID: &id, Key: "0x0d4d0007", AgeSecond: 3600, Remove: "ipcrm -s 7"}}})
	}))
	defer srv.Close()
	listen := strings.TrimPrefix(srv.URL, "http://")
	var out, errb bytes.Buffer
	if code := runResidue([]string{"--listen", listen, "--clean", residue.CleanDMSem}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--clean refused") || strings.Contains(out.String(), "removed") {
		t.Fatalf("code %d stdout %q stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := runResidue([]string{"--listen", listen}, &out, &errb); code != 0 || !strings.Contains(out.String(), "# replay of a capture") || !strings.Contains(out.String(), "ipcrm -s 7") {
		t.Fatalf("listing a replay: code %d stdout %q", code, out.String())
	}
}

// A ctime of year 10000 made /residue answer 200 with an empty body, and
// `observer residue --json` print nothing and exit 0. A daemon that answers
// with an error is now reported, exit 1, never replaced by a standalone scan.
func TestResidueCLIDaemonErrorExits1(t *testing.T) {
	srv := httptest.NewServer(server.JSONHandler(func() any {
		return map[string]time.Time{"ctime": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := runResidue([]string{"--listen", strings.TrimPrefix(srv.URL, "http://"), "--json"}, &out, &errb)
	if code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "500") || !strings.Contains(errb.String(), "year") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 with the daemon's 500 and its reason", code, out.String(), errb.String())
	}
}

// Bad flags are one line on stderr and exit 2.
func TestResidueFlags(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"--clean", "all"}, {"--older-than", "x"}, {"extra"}} {
		out.Reset()
		errb.Reset()
		if code := runResidue(args, &out, &errb); code != 2 || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: code %d stderr %q", args, code, errb.String())
		}
	}
}
