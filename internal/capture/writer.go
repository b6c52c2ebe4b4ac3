package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxMemberBytes bounds one gzip member's uncompressed size. The writer starts a
// new member well before it; the reader refuses larger ones (a damaged file or a
// decompression bomb must not exhaust memory).
const MaxMemberBytes = 16 << 20

// memberTarget is when the writer closes a member on its own: small enough
// that a capture cut short loses little, large enough to compress well.
const memberTarget = 64 << 10

// Writer writes a capture. Records are buffered in the current gzip member until
// Flush; every Flush ends the member, so what was flushed survives a crash.
// Writer is not safe for concurrent use. After a write error every call returns it.
type Writer struct {
	w       io.Writer
	gz      *gzip.Writer
	open    bool // a member has records not yet closed
	pending int  // uncompressed bytes in the open member
	buf     bytes.Buffer
	err     error
}

// NewWriter writes the header (as its own member, flushed) and returns the writer.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Format, h.Version = FormatName, Version
	cw := &Writer{w: w, gz: gzip.NewWriter(io.Discard)}
	if err := cw.put(line{Record: KindHeader, Header: &h}); err != nil {
		return nil, err
	}
	if err := cw.Flush(); err != nil {
		return nil, err
	}
	return cw, nil
}

// WriteEvent appends an event given as its JSON object.
func (cw *Writer) WriteEvent(ev json.RawMessage) error {
	return cw.put(line{Record: KindEvent, Event: ev})
}

// WriteSnapshot appends a state snapshot.
func (cw *Writer) WriteSnapshot(s *Snapshot) error {
	return cw.put(line{Record: KindSnapshot, Snapshot: s})
}

// Close writes the end record and flushes. It does not close the underlying writer.
func (cw *Writer) Close(end End) error {
	if err := cw.put(line{Record: KindEnd, End: &end}); err != nil {
		return err
	}
	return cw.Flush()
}

func (cw *Writer) put(l line) error {
	if cw.err != nil {
		return cw.err
	}
	cw.buf.Reset()
	if err := json.NewEncoder(&cw.buf).Encode(l); err != nil {
		return fmt.Errorf("encode %s record: %w", l.Record, err)
	}
	return cw.write(l.Record)
}

// write appends the record in cw.buf to the open member.
func (cw *Writer) write(kind string) error {
	if cw.buf.Len() > MaxMemberBytes/2 {
		return fmt.Errorf("encode %s record: %d bytes is too large for a capture record", kind, cw.buf.Len())
	}
	if cw.pending+cw.buf.Len() > memberTarget {
		if err := cw.Flush(); err != nil {
			return err
		}
	}
	if !cw.open {
		cw.gz.Reset(cw.w)
		cw.open = true
	}
	if _, err := cw.gz.Write(cw.buf.Bytes()); err != nil {
		cw.err = fmt.Errorf("write capture: %w", err)
		return cw.err
	}
	cw.pending += cw.buf.Len()
	return nil
}

// Flush ends the current gzip member, if it holds records.
func (cw *Writer) Flush() error {
	if cw.err != nil {
		return cw.err
	}
	if !cw.open {
		return nil
	}
	cw.open, cw.pending = false, 0
	if err := cw.gz.Close(); err != nil {
		cw.err = fmt.Errorf("write capture: %w", err)
		return cw.err
	}
	// Push the member through buffered writers and HTTP responses.
	switch f := cw.w.(type) {
	case interface{ Flush() error }:
		if err := f.Flush(); err != nil {
			cw.err = fmt.Errorf("write capture: %w", err)
			return cw.err
		}
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}

// WriteRawSnapshot appends a snapshot already encoded as JSON (the flight
// recorder keeps them encoded).
func (cw *Writer) WriteRawSnapshot(raw json.RawMessage) error {
	if cw.err != nil {
		return cw.err
	}
	if !json.Valid(raw) {
		return errors.New("snapshot record: invalid JSON")
	}
	cw.buf.Reset()
	cw.buf.WriteString(`{"record":"snapshot","snapshot":`)
	cw.buf.Write(raw)
	cw.buf.WriteString("}\n")
	return cw.write(KindSnapshot)
}
