package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// ResultPrefix starts a console line that the VM harness collects into
// .vmtest/<kernel>/results.jsonl (one JSON object per line, with "kernel"
// and "binary" added by the harness when absent).
const ResultPrefix = "OBSERVER-RESULT "

// Result reports a structured fact about this kernel (for example which attach
// mode a sensor got) through the results channel. It writes straight to
// stdout rather than t.Log so the line is not indented or buffered until the
// test ends; on the host it is just an extra line in the test output.
func Result(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Errorf("testenv.Result: encoding %T: %v", v, err)
		return
	}
	// One write so the line is not interleaved with other output.
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", ResultPrefix, b); err != nil {
		t.Errorf("testenv.Result: writing: %v", err)
	}
}
