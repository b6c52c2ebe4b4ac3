// Package eventlog writes the event stream as JSON lines to a file or stdout.
package eventlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

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
	// Events name every process and path on the node: an existing file open
	// to others (0644) is tightened to what a new one gets. Not a device or
	// a pipe (/dev/null, a FIFO to a log shipper): those are the operator's.
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o027 != 0 {
		if err := f.Chmod(fi.Mode().Perm() &^ 0o027); err != nil {
			f.Close()
			return nil, fmt.Errorf("event file %s is %v and cannot be made 0640: %w", path, fi.Mode().Perm(), err)
		}
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

// RetryInterval is how often a writer that hit a write error (a full disk)
// tries to open the file again and resume.
var RetryInterval = 5 * time.Second

// maxBuffer is how much the writer buffers between writes.
const maxBuffer = 64 << 10

// Write copies sub's events to the file until the subscription closes (the
// bus closes it at shutdown, after the last event), so nothing queued is
// lost. It flushes whenever the queue runs empty: lines appear promptly
// without a syscall per event under load. A reopen that fails keeps the old
// file (nothing is lost) and is returned to onReopen, as is success (nil).
//
// A write error (a full disk) does not end it: the file is reopened every
// RetryInterval (and on Reopen) and the events buffered meanwhile written;
// the first write that succeeds resumes. Every event lost on the way (those
// of a failed write, those that did not fit the buffer while waiting) is
// counted in sub's dropped counter (sub.Missed). onError gets the error once
// per failure and nil when the file resumes. A line cut by the error is
// ended with a newline first, so every line of the file stays one JSON object.
func (f *File) Write(sub *bus.Subscription, onReopen, onError func(error)) error {
	w := &lineWriter{f: f, sub: sub}
	if onError == nil {
		onError = func(error) {}
	}
	var retry <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	failed := func(err error) {
		if ticker == nil {
			onError(err)
			ticker = time.NewTicker(RetryInterval)
			retry = ticker.C
		}
	}
	retryNow := func() {
		if f.swap() != nil {
			return
		}
		if w.resume() != nil {
			return
		}
		ticker.Stop()
		ticker, retry = nil, nil
		onError(nil)
	}
	for {
		select {
		case <-f.reopen:
			if ticker != nil {
				// Failed: a reopen is a retry (the rotated file may have room).
				err := f.swap()
				if onReopen != nil {
					onReopen(err)
				}
				if err == nil && w.resume() == nil {
					ticker.Stop()
					ticker, retry = nil, nil
					onError(nil)
				}
				continue
			}
			if err := w.flush(); err != nil {
				failed(err)
			}
			err := f.swap()
			if onReopen != nil {
				onReopen(err)
			}
		case <-retry:
			retryNow()
		case ev, ok := <-sub.C():
			if !ok {
				if ticker != nil {
					// One last try for what was held, then count the rest.
					if f.swap() == nil {
						w.resume()
					}
					w.drop()
					return nil
				}
				if err := w.flush(); err != nil {
					return fmt.Errorf("write event: %w", err)
				}
				return nil
			}
			if ticker != nil {
				w.hold(ev)
				continue
			}
			if err := w.add(ev); err != nil {
				failed(err)
				continue
			}
			if len(sub.C()) == 0 {
				if err := w.flush(); err != nil {
					failed(err)
				}
			}
		}
	}
}

// lineWriter buffers whole lines and knows how many events its buffer holds,
// so a failed write counts exactly the events it lost.
type lineWriter struct {
	f       *File
	sub     *bus.Subscription
	buf     bytes.Buffer
	events  uint64 // events in buf
	cutLine bool   // the last failed write may have left part of a line
}

func (w *lineWriter) add(ev any) error {
	line, err := json.Marshal(ev)
	if err != nil {
		// One event that cannot be encoded is lost, not the file.
		w.sub.Missed(1)
		return nil
	}
	if w.buf.Len()+len(line)+1 > maxBuffer {
		if err := w.flush(); err != nil {
			// Held for the resume like the events that follow.
			w.buf.Write(line)
			w.buf.WriteByte('\n')
			w.events++
			return err
		}
	}
	w.buf.Write(line)
	w.buf.WriteByte('\n')
	w.events++
	return nil
}

// flush writes the buffer; on error its events are counted as missed.
func (w *lineWriter) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	n, err := w.f.write(w.buf.Bytes())
	if err == nil && n < w.buf.Len() {
		err = io.ErrShortWrite
	}
	if err != nil {
		// Lines written whole before the error are in the file; the rest,
		// including a line cut in the middle, are missed.
		whole := uint64(bytes.Count(w.buf.Bytes()[:n], []byte("\n")))
		w.sub.Missed(w.events - whole)
		w.cutLine = n > 0 && w.buf.Bytes()[n-1] != '\n'
	}
	w.buf.Reset()
	w.events = 0
	if err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// hold buffers an event while the file fails, to be written on resume; an
// event that does not fit is missed.
func (w *lineWriter) hold(ev any) {
	line, err := json.Marshal(ev)
	if err != nil || w.buf.Len()+len(line)+1 > maxBuffer {
		w.sub.Missed(1)
		return
	}
	w.buf.Write(line)
	w.buf.WriteByte('\n')
	w.events++
}

// drop counts the buffered events as missed (the writer ends while failing).
func (w *lineWriter) drop() {
	w.sub.Missed(w.events)
	w.buf.Reset()
	w.events = 0
}

// resume ends a line a failed write cut, then writes what was held: nil
// means the file takes writes again (or nothing was there to try).
func (w *lineWriter) resume() error {
	if w.cutLine {
		if _, err := w.f.write([]byte("\n")); err != nil {
			return err
		}
		w.cutLine = false
	}
	return w.flush()
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
