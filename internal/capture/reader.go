package capture

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/observer-dev/observer/internal/event"
)

// ErrNotCapture is wrapped by the error for a file that is not a capture at all.
var ErrNotCapture = errors.New("not an observer capture")

// ErrDamaged is wrapped by the error for a capture whose content is corrupt
// (as opposed to cut short, which is only a warning).
var ErrDamaged = errors.New("damaged capture")

// Record is one decoded record after the header.
type Record struct {
	Kind string
	// Event is set for KindEvent: a typed event, or *event.Unknown for a type
	// this observer does not know.
	Event    event.Event
	Snapshot *Snapshot
	End      *End
}

// Reader reads a capture member by member. A member is decoded only once it is
// complete and its checksum verified, so a truncated file yields exactly the
// records of its complete members.
type Reader struct {
	br      *bufio.Reader
	zr      *gzip.Reader
	header  Header
	lines   [][]byte
	members int
	done    bool
	sawEnd  bool
	unknown map[string]int
	warns   []string
}

// NewReader reads and checks the header. It fails for a file that is not a
// capture, or one written by a newer format version.
func NewReader(r io.Reader) (*Reader, error) {
	cr := &Reader{br: bufio.NewReader(r), unknown: map[string]int{}}
	if err := cr.readMember(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrNotCapture)
		}
		return nil, err
	}
	if len(cr.lines) == 0 {
		return nil, fmt.Errorf("%w: no header record", ErrNotCapture)
	}
	var l line
	if err := json.Unmarshal(cr.lines[0], &l); err != nil || l.Record != KindHeader || l.Header == nil || l.Header.Format != FormatName {
		return nil, fmt.Errorf("%w: the first record is not an %s header", ErrNotCapture, FormatName)
	}
	if l.Header.Version < 1 || l.Header.Version > Version {
		return nil, fmt.Errorf("capture format version %d: this observer reads versions 1 to %d; use a newer observer", l.Header.Version, Version)
	}
	cr.header = *l.Header
	cr.lines = cr.lines[1:]
	return cr, nil
}

// Header returns the capture's header.
func (cr *Reader) Header() Header { return cr.header }

// Warnings are the problems that did not stop reading: a file cut short,
// events of unknown types, unknown record kinds. Complete after Next returns io.EOF.
func (cr *Reader) Warnings() []string {
	out := append([]string(nil), cr.warns...)
	for typ, n := range cr.unknown {
		out = append(out, fmt.Sprintf("%d events of unknown type %q kept undecoded (written by a newer observer?)", n, typ))
	}
	return out
}

// Complete tells whether the capture ended with its end record.
func (cr *Reader) Complete() bool { return cr.sawEnd }

// Next returns the next record, io.EOF at the end (including the end of a file
// cut short: see Warnings), or an error wrapping ErrDamaged.
func (cr *Reader) Next() (Record, error) {
	for {
		for len(cr.lines) > 0 {
			raw := cr.lines[0]
			cr.lines = cr.lines[1:]
			rec, ok, err := cr.decode(raw)
			if err != nil {
				return Record{}, err
			}
			if ok {
				return rec, nil
			}
		}
		if cr.done {
			return Record{}, io.EOF
		}
		if err := cr.readMember(); err != nil {
			if errors.Is(err, io.EOF) {
				cr.done = true
				if !cr.sawEnd {
					cr.warns = append(cr.warns, "capture has no end record: it was cut short (crash, full disk or still being written)")
				}
				continue
			}
			return Record{}, err
		}
	}
}

func (cr *Reader) decode(raw []byte) (Record, bool, error) {
	var l line
	if err := json.Unmarshal(raw, &l); err != nil {
		return Record{}, false, fmt.Errorf("%w: member %d: bad record: %v", ErrDamaged, cr.members, err)
	}
	switch l.Record {
	case KindEvent:
		ev, known, err := event.DecodeOrKeep(l.Event)
		if err != nil {
			cr.warns = append(cr.warns, fmt.Sprintf("member %d: event skipped: %v", cr.members, err))
			return Record{}, false, nil
		}
		if !known {
			cr.unknown[ev.Hdr().Type]++
		}
		return Record{Kind: KindEvent, Event: ev}, true, nil
	case KindSnapshot:
		if l.Snapshot == nil {
			return Record{}, false, fmt.Errorf("%w: member %d: snapshot record without a snapshot", ErrDamaged, cr.members)
		}
		return Record{Kind: KindSnapshot, Snapshot: l.Snapshot}, true, nil
	case KindEnd:
		if l.End == nil {
			return Record{}, false, fmt.Errorf("%w: member %d: end record without content", ErrDamaged, cr.members)
		}
		cr.sawEnd = true
		return Record{Kind: KindEnd, End: l.End}, true, nil
	case KindHeader:
		return Record{}, false, fmt.Errorf("%w: member %d: a second header (two captures concatenated?)", ErrDamaged, cr.members)
	default:
		cr.warns = append(cr.warns, fmt.Sprintf("member %d: record of unknown kind %q skipped", cr.members, l.Record))
		return Record{}, false, nil
	}
}

// readMember decompresses the next whole gzip member into cr.lines. It returns
// io.EOF at the clean end of the file, and also at a member cut short (with a
// warning): what follows a truncation cannot be trusted.
func (cr *Reader) readMember() error {
	var err error
	if cr.zr == nil {
		cr.zr, err = gzip.NewReader(cr.br)
	} else {
		err = cr.zr.Reset(cr.br)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) && cr.members > 0:
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if cr.members == 0 {
			return fmt.Errorf("%w: file too short for a gzip header", ErrNotCapture)
		}
		cr.truncated("a gzip header")
		return io.EOF
	case cr.members == 0:
		return fmt.Errorf("%w: not gzip data (%v)", ErrNotCapture, err)
	default:
		return fmt.Errorf("%w: after member %d: %v", ErrDamaged, cr.members, err)
	}
	cr.zr.Multistream(false)
	data, err := io.ReadAll(io.LimitReader(cr.zr, MaxMemberBytes+1))
	switch {
	case err == nil && len(data) > MaxMemberBytes:
		return fmt.Errorf("%w: member %d is larger than %d bytes uncompressed", ErrDamaged, cr.members+1, MaxMemberBytes)
	case err == nil:
	case errors.Is(err, io.ErrUnexpectedEOF):
		if cr.members == 0 {
			return fmt.Errorf("%w: the header member is cut short", ErrNotCapture)
		}
		cr.truncated(fmt.Sprintf("member %d", cr.members+1))
		return io.EOF
	default:
		var corrupt flate.CorruptInputError
		if cr.members == 0 && !errors.As(err, &corrupt) && !errors.Is(err, gzip.ErrChecksum) {
			return fmt.Errorf("%w: %v", ErrNotCapture, err)
		}
		return fmt.Errorf("%w: member %d: %v", ErrDamaged, cr.members+1, err)
	}
	cr.members++
	cr.lines = cr.lines[:0]
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			cr.lines = append(cr.lines, l)
		}
	}
	return nil
}

func (cr *Reader) truncated(what string) {
	cr.warns = append(cr.warns, fmt.Sprintf("file cut short in %s: read up to the end of member %d", what, cr.members))
}
