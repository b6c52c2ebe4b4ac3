// Package hostile writes the crafted captures that readers must survive in
// bounded memory and output: members full of junk records, and small files
// that expand to millions of events. Tests of every capture reader use it.
package hostile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/observer-dev/observer/internal/capture"
)

// T0 is the time the crafted captures start at.
var T0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// header writes a valid capture header as the first member.
func header(w io.Writer) error {
	_, err := capture.NewWriter(w, capture.Header{Host: "hostile", Kernel: "6.18", ObserverVersion: "test",
		StartTime: T0, Reason: "crafted"})
	return err
}

// member gzips payload as one member.
func member(payload []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(payload)
	zw.Close()
	return buf.Bytes()
}

// JunkMembers writes a valid header, then members members, each as close to
// capture.MaxMemberBytes uncompressed as whole lines of line allow (the
// reader's largest). With line `{}` and five members this is the 80 KB file
// that took 4.1 GB and 27.5 M warning lines to read: every line is a record of
// no known kind.
func JunkMembers(w io.Writer, line string, members int) error {
	if err := header(w); err != nil {
		return err
	}
	l := []byte(line + "\n")
	m := member(bytes.Repeat(l, capture.MaxMemberBytes/len(l)))
	for range members {
		if _, err := w.Write(m); err != nil {
			return err
		}
	}
	return nil
}

// JunkLines is how many records JunkMembers writes.
func JunkLines(line string, members int) int {
	return members * (capture.MaxMemberBytes / (len(line) + 1))
}

// ManyEvents writes a valid header, then n events built by ev (given its
// index in a member of perMember), in members of perMember events. Members
// repeat, so a few megabytes hold millions of events, with an end record
// when complete is set. Event times advance by step per member; with step 0
// every full member is the same bytes, compressed once.
func ManyEvents(w io.Writer, n, perMember int, step time.Duration, ev func(t time.Time, i int) any, complete bool) error {
	if err := header(w); err != nil {
		return err
	}
	written := 0
	var same []byte
	for m := 0; written < n; m++ {
		k := min(perMember, n-written)
		if step == 0 && k == perMember && same != nil {
			if _, err := w.Write(same); err != nil {
				return err
			}
			written += k
			continue
		}
		var payload bytes.Buffer
		at := T0.Add(time.Duration(m) * step)
		for i := range k {
			raw, err := json.Marshal(ev(at, i))
			if err != nil {
				return err
			}
			fmt.Fprintf(&payload, `{"record":"event","event":%s}`+"\n", raw)
		}
		mb := member(payload.Bytes())
		if step == 0 && k == perMember {
			same = mb
		}
		if _, err := w.Write(mb); err != nil {
			return err
		}
		written += k
	}
	if !complete {
		return nil
	}
	end, _ := json.Marshal(capture.End{Time: T0.Add(time.Duration(n/max(perMember, 1)+1) * step), Events: uint64(n)})
	_, err := w.Write(member([]byte(`{"record":"end","end":` + string(end) + "}\n")))
	return err
}

// Seeds are the decoder's fuzz seed corpus (internal/capture's
// testdata/fuzz/FuzzDecode), read from dir, followed by the hostile files
// above, so that the report and replay fuzzers start where the decoder's does.
func Seeds(dir string) ([][]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		body, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
		body = strings.TrimSpace(body)
		body, ok2 := strings.CutSuffix(body, ")")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s: not a go fuzz seed of one []byte", p)
		}
		s, err := strconv.Unquote(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, []byte(s))
	}
	var junk, many bytes.Buffer
	if err := JunkMembers(&junk, "{}", 5); err != nil {
		return nil, err
	}
	if err := ManyEvents(&many, 200_000, 2000, 0, func(at time.Time, i int) any {
		return map[string]any{"time": at, "type": "rename_exdev", "pid": i, "comm": "mv", "container_id": fmt.Sprintf("%064x", i%3000)}
	}, false); err != nil {
		return nil, err
	}
	return append(out, junk.Bytes(), many.Bytes()), nil
}

// PeakHeap runs f and returns the largest heap in use seen while it ran,
// above what was in use before (the file being read, say), sampled every few
// milliseconds and once at the end: coarse, but a reader that keeps what it
// reads grows far past any bound a test sets.
func PeakHeap(f func()) uint64 {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	f()
	sample()
	close(done)
	<-stopped
	return peak.Load() - min(peak.Load(), before.HeapInuse)
}
