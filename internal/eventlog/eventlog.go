// Package eventlog writes the event stream as JSON lines to a file or stdout.
package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/observer-dev/observer/internal/bus"
)

// Queue is the event file's subscriber queue; a full queue drops (counted as "file").
const Queue = 16384

// Open opens path for appending ("-" is stdout). An existing file is never truncated.
func Open(path string) (io.WriteCloser, error) {
	if path == "-" {
		return nopCloser{os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open event file: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Write copies sub's events to w until the subscription closes (the bus closes
// it at shutdown, after the last event), so nothing queued is lost. It flushes
// whenever the queue runs empty: lines appear promptly without a syscall per
// event under load.
func Write(sub *bus.Subscription, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for ev := range sub.C() {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
		if len(sub.C()) == 0 {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write event: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}
