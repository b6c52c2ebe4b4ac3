package capture

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: whatever the bytes, reading a capture ends in records, warnings or
// one clean error, never a panic or a hang. The seed corpus in
// testdata/fuzz/FuzzDecode holds real captures, truncated ones, bit flips and
// gzip headers with huge length fields; real captures from the root tests are
// added from ../../testdata/captures.
func FuzzDecode(f *testing.F) {
	f.Add(sample(f, false))
	f.Add(sample(f, true))
	real, _ := filepath.Glob("../../testdata/captures/*.jsonl.gz")
	for _, p := range real {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytesReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for range 1 << 20 {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				r.Warnings()
				return
			}
			if err != nil {
				return
			}
			if rec.Kind == "" || (rec.Kind == KindEvent && rec.Event == nil) {
				t.Fatalf("record without content: %+v", rec)
			}
		}
		t.Fatal("reader did not end")
	})
}
