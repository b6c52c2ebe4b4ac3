package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode")

// TestSeedCorpus regenerates the fuzz seed corpus with -update-seeds, and
// otherwise checks that every seed decodes without panicking.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateSeeds {
		must(t, os.MkdirAll(dir, 0o755))
		full := sample(t, true)
		seeds := map[string][]byte{
			"complete":           full,
			"truncated-half":     full[:len(full)/2],
			"truncated-trailer":  full[:len(full)-3],
			"truncated-header":   full[:15],
			"bitflip-deflate":    flip(full, len(full)/2),
			"bitflip-magic":      flip(full, 0),
			"huge-fextra-length": hugeExtra(),
			"huge-isize":         hugeISize(),
			"foreign-gzip":       gzipOf([]byte("{\"not\":\"a capture\"}\n")),
			"plain-text":         []byte("record header\n"),
			"two-headers":        append(bytes.Clone(full), full...),
		}
		for name, data := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
			must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) < 10 {
		t.Fatalf("seed corpus has %d files; regenerate with go test -run TestSeedCorpus -update-seeds", len(files))
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// hugeExtra is a gzip header announcing a 64 KiB FEXTRA field that is not there.
func hugeExtra() []byte {
	h := []byte{0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 0xff, 0xff}
	return append(h, "short"...)
}

// hugeISize is a valid capture member whose trailer claims 4 GiB uncompressed.
func hugeISize() []byte {
	var buf bytes.Buffer
	NewWriter(&buf, Header{})
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[len(b)-4:], 0xffffffff)
	return b
}
