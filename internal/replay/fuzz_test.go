package replay

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/observer-dev/observer/internal/capture"
	"github.com/observer-dev/observer/internal/capture/hostile"
)

// maxFuzzHeap bounds the heap a replay's reading side may take, whatever the
// capture: members are at most 16 MiB, warnings and containers are bounded.
const maxFuzzHeap = 160 << 20

// FuzzReplay is the decoder's fuzzer (internal/capture FuzzDecode, same seed
// corpus, plus the hostile captures) run through a replay: every event
// delivered, every snapshot applied, progress read, in bounded memory, never
// a panic or a hang. The daemon side of a replay on the hostile files is
// measured in cmd/observer (TestHostileCapturesBoundedRSS).
func FuzzReplay(f *testing.F) {
	seeds, err := hostile.Seeds("../capture/testdata/fuzz/FuzzDecode")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "c.jsonl.gz")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var info Info
		peak := hostile.PeakHeap(func() {
			rp, err := Open(path, Options{ExitWhenDone: true})
			if err != nil {
				if err.Error() == "" {
					t.Error("empty error")
				}
				return
			}
			snaps := 0
			rp.OnSnapshot(func(*capture.Snapshot) { snaps++ })
			rp.Start(context.Background())
			for ev := range rp.Events() {
				if ev == nil || ev.Hdr() == nil {
					t.Fatal("nil event")
				}
			}
			<-rp.Done()
			info = rp.Info()
			rp.Status()
			if n := len(rp.Containers()); n > MaxContainers {
				t.Errorf("%d containers, want at most %d", n, MaxContainers)
			}
		})
		if peak > maxFuzzHeap {
			t.Errorf("peak heap %d MiB for a %d-byte capture, want at most %d MiB", peak>>20, len(data), maxFuzzHeap>>20)
		}
		if len(info.Warnings) > 40 {
			t.Errorf("%d warnings, want at most 40", len(info.Warnings))
		}
	})
}
