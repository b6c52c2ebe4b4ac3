// Package eventlog writes the event stream as JSON lines to a file or stdout.
package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/observer-dev/observer/internal/bus"
)

// Queue is the event file's subscriber queue; a full queue drops (counted as "file").
const Queue = 16384

// File is the --events destination. Reopen (the daemon calls it on SIGHUP)
// makes the writer open the path anew, so logrotate can move the file away.
type File struct {
	path   string
	mu     sync.Mutex // guards w: Close may run while Write is between events
	w      io.WriteCloser
	reopen chan struct{}
}

// Open opens path for appending ("-" is stdout). An existing file is never truncated.
func Open(path string) (*File, error) {
	w, err := openPath(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, w: w, reopen: make(chan struct{}, 1)}, nil
}

func openPath(path string) (io.WriteCloser, error) {
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

// Reopen asks the writer to reopen the path before its next event (and at
// once when idle). It never blocks; requests made before the writer gets to
// one are merged. Stdout is not reopened.
func (f *File) Reopen() {
	if f.path == "-" {
		return
	}
	select {
	case f.reopen <- struct{}{}:
	default:
	}
}

// Close closes the current file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Close()
}

// Write copies sub's events to the file until the subscription closes (the
// bus closes it at shutdown, after the last event), so nothing queued is
// lost. It flushes whenever the queue runs empty: lines appear promptly
// without a syscall per event under load. A reopen that fails keeps the old
// file (nothing is lost) and is returned to onReopen, as is success (nil).
func (f *File) Write(sub *bus.Subscription, onReopen func(error)) error {
	bw := bufio.NewWriterSize(writerFunc(f.write), 64<<10)
	enc := json.NewEncoder(bw)
	for {
		select {
		case <-f.reopen:
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write event: %w", err)
			}
			if onReopen != nil {
				onReopen(f.swap())
			} else {
				f.swap()
			}
		case ev, ok := <-sub.C():
			if !ok {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("write event: %w", err)
				}
				return nil
			}
			if err := enc.Encode(ev); err != nil {
				return fmt.Errorf("write event: %w", err)
			}
			if len(sub.C()) == 0 {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("write event: %w", err)
				}
			}
		}
	}
}

// swap opens the path again and only then closes the old file, so a failed
// open leaves the daemon writing where it was.
func (f *File) swap() error {
	w, err := openPath(f.path)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	f.mu.Lock()
	old := f.w
	f.w = w
	f.mu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("close the old event file: %w", err)
	}
	return nil
}

func (f *File) write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
