package report

import (
	"bytes"
	"io"
	"testing"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/capture/hostile"
)

// maxFuzzHeap bounds the heap a report may take beyond its input, whatever
// the input: members are at most 16 MiB, everything kept is bounded.
const maxFuzzHeap = 160 << 20

// maxTextLines bounds a text report: the timeline, the containers (two lines
// each), the types and sensors, the warnings and a few headings.
const maxTextLines = MaxTimeline + 2*MaxContainers + MaxTypes + maxSensors + 100

// FuzzReport is the decoder's fuzzer (internal/capture FuzzDecode, same seed
// corpus, plus the hostile captures) run through the whole report: whatever
// the bytes, a report in bounded memory and bounded output, never a panic.
func FuzzReport(f *testing.F) {
	seeds, err := hostile.Seeds("../capture/testdata/fuzz/FuzzDecode")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var text bytes.Buffer
		peak := hostile.PeakHeap(func() {
			cr, err := capture.NewReader(bytes.NewReader(data))
			if err != nil {
				return
			}
			r := Build(cr)
			if err := r.Text(&text); err != nil {
				t.Error(err)
			}
			if err := r.JSON(io.Discard); err != nil {
				t.Error(err)
			}
			if err := r.HTML(io.Discard); err != nil {
				t.Error(err)
			}
		})
		if peak > maxFuzzHeap {
			t.Errorf("peak heap %d MiB for a %d-byte capture, want at most %d MiB", peak>>20, len(data), maxFuzzHeap>>20)
		}
		if n := bytes.Count(text.Bytes(), []byte("\n")); n > maxTextLines {
			t.Errorf("text report of %d lines, want at most %d", n, maxTextLines)
		}
	})
}
