package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// Bad flags are one line on stderr and exit 2; no daemon is exit 1, saying where it looked.
func TestSeccompReportFlags(t *testing.T) {
	for _, args := range [][]string{{"--listen", "nocolon"}, {"--interval", "-1s"}, {"--bogus"}, {"extra"}} {
		var errOut bytes.Buffer
		if code := runSeccompReport(args, io.Discard, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if n := strings.Count(errOut.String(), "\n"); n != 1 {
			t.Errorf("%v: %d lines of error, want one: %q", args, n, errOut.String())
		}
	}
	var errOut bytes.Buffer
	if code := runSeccompReport([]string{"--listen", "127.0.0.1:1", "--interval", "0"}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "no daemon at 127.0.0.1:1") {
		t.Errorf("no daemon: exit %d %q", code, errOut.String())
	}
}
