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

// EnvResultsFile, when set (make test sets it to .vmtest/host/results.jsonl),
// names a file that Result also appends each JSON object to, so host runs
// feed the kernel matrix table as the QEMU guests do.
const EnvResultsFile = "OBSERVER_RESULTS_FILE"

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
	if path := os.Getenv(EnvResultsFile); path != "" {
		if err := appendLine(path, b); err != nil {
			t.Errorf("testenv.Result: %v", err)
		}
	}
}

// appendLine writes one line with O_APPEND, so test binaries run one after
// another (go test -p 1) or concurrently never interleave within a line.
func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	return nil
}
