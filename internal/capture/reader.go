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
	buf     bytes.Buffer
	member  []byte // the rest of the current member's records (in buf)
	members int
	done    bool
	sawEnd  bool
	warns   warnings
}

// maxWarningKinds bounds the distinct warnings kept: a crafted file can make
// every record a new kind of problem. Each kind is counted, with its first
// example; kinds past the bound are counted together.
const maxWarningKinds = 32

// warnings counts problems by kind, keeping the first example of each, so a
// file of millions of bad records costs a few lines, not one per record.
type warnings struct {
	order []warnKey
	kinds map[warnKey]*warning
	other int // occurrences of kinds past maxWarningKinds
}

// warnKey is a kind of problem: a class and, for some, a name (the unknown
// record kind or event type).
type warnKey struct{ class, name string }

type warning struct {
	n     int
	first string // the first occurrence's message
	many  func(n int, first string) string
}

// counted counts one more occurrence of k if it was seen before (the cheap
// path: no allocation), and tells whether it was.
func (w *warnings) counted(k warnKey) bool {
	if x := w.kinds[k]; x != nil {
		x.n++
		return true
	}
	if len(w.order) >= maxWarningKinds {
		w.other++
		return true
	}
	return false
}

// add records the first occurrence of k: msg is its message, many the
// summary once it happened more than once (nil: msg alone).
func (w *warnings) add(k warnKey, msg string, many func(n int, first string) string) {
	if w.counted(k) {
		return
	}
	if w.kinds == nil {
		w.kinds = map[warnKey]*warning{}
	}
	w.kinds[k] = &warning{n: 1, first: msg, many: many}
	w.order = append(w.order, k)
}

func (w *warnings) list() []string {
	var out []string
	for _, k := range w.order {
		x := w.kinds[k]
		if x.n == 1 || x.many == nil {
			out = append(out, x.first)
		} else {
			out = append(out, x.many(x.n, x.first))
		}
	}
	if w.other > 0 {
		out = append(out, fmt.Sprintf("%d more problems of other kinds, not listed (at most %d kinds are)", w.other, maxWarningKinds))
	}
	return out
}

// NewReader reads and checks the header. It fails for a file that is not a
// capture, or one written by a newer format version.
func NewReader(r io.Reader) (*Reader, error) {
	cr := &Reader{br: bufio.NewReader(r)}
	if err := cr.readMember(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrNotCapture)
		}
		return nil, err
	}
	first, ok := cr.nextLine()
	if !ok {
		return nil, fmt.Errorf("%w: no header record", ErrNotCapture)
	}
	var l line
	if err := json.Unmarshal(first, &l); err != nil || l.Record != KindHeader || l.Header == nil || l.Header.Format != FormatName {
		return nil, fmt.Errorf("%w: the first record is not an %s header", ErrNotCapture, FormatName)
	}
	if l.Header.Version < 1 || l.Header.Version > Version {
		return nil, fmt.Errorf("capture format version %d: this observer reads versions 1 to %d; use a newer observer", l.Header.Version, Version)
	}
	cr.header = *l.Header
	return cr, nil
}

// Header returns the capture's header.
func (cr *Reader) Header() Header { return cr.header }

// Warnings are the problems that did not stop reading: a file cut short,
// events of unknown types, unknown record kinds. Each kind of problem is one
// line with its count, and there are at most about maxWarningKinds lines,
// however many records were bad. Complete after Next returns io.EOF.
func (cr *Reader) Warnings() []string { return cr.warns.list() }

// Complete tells whether the capture ended with its end record.
func (cr *Reader) Complete() bool { return cr.sawEnd }

// Next returns the next record, io.EOF at the end (including the end of a file
// cut short: see Warnings), or an error wrapping ErrDamaged.
func (cr *Reader) Next() (Record, error) {
	for {
		for {
			raw, more := cr.nextLine()
			if !more {
				break
			}
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
					cr.warns.add(warnKey{class: "no end"}, "capture has no end record: it was cut short (crash, full disk or still being written)", nil)
				}
				continue
			}
			return Record{}, err
		}
	}
}

func (cr *Reader) decode(raw []byte) (Record, bool, error) {
	var l line
	if noRecordField(raw) {
		// A line that cannot name a record kind: only check it is JSON, which
		// is several times cheaper than decoding it (a crafted member holds
		// millions of such lines).
		if !json.Valid(raw) {
			return Record{}, false, fmt.Errorf("%w: member %d: bad record: invalid JSON", ErrDamaged, cr.members)
		}
	} else if err := json.Unmarshal(raw, &l); err != nil {
		return Record{}, false, fmt.Errorf("%w: member %d: bad record: %v", ErrDamaged, cr.members, err)
	}
	switch l.Record {
	case KindEvent:
		ev, known, err := event.DecodeOrKeep(l.Event)
		if err != nil {
			if cr.warns.counted(warnKey{class: "event skipped"}) {
				return Record{}, false, nil
			}
			cr.warns.add(warnKey{class: "event skipped"}, fmt.Sprintf("member %d: event skipped: %v", cr.members, err), func(n int, first string) string {
				return fmt.Sprintf("%d events skipped as undecodable; the first: %s", n, first)
			})
			return Record{}, false, nil
		}
		if !known {
			typ := ev.Hdr().Type
			if k := (warnKey{"type", typ}); !cr.warns.counted(k) {
				cr.warns.add(k, fmt.Sprintf("1 event of unknown type %q kept undecoded (written by a newer observer?)", typ), func(n int, _ string) string {
					return fmt.Sprintf("%d events of unknown type %q kept undecoded (written by a newer observer?)", n, typ)
				})
			}
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
		k := warnKey{"kind", l.Record}
		if cr.warns.counted(k) {
			return Record{}, false, nil
		}
		kind, m := l.Record, cr.members
		cr.warns.add(k, fmt.Sprintf("member %d: record of unknown kind %q skipped", m, kind), func(n int, _ string) string {
			return fmt.Sprintf("%d records of unknown kind %q skipped, the first in member %d", n, kind, m)
		})
		return Record{}, false, nil
	}
}

// noRecordField tells that raw has no "record" key: encoding/json matches
// keys case-insensitively and after unescaping, so only a line with neither a
// backslash nor "record" in any case is sure to have none.
func noRecordField(raw []byte) bool {
	if bytes.HasPrefix(raw, []byte(`{"record":`)) || bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	for i := 0; i+6 <= len(raw); i++ {
		if c := raw[i]; (c == 'r' || c == 'R') && bytes.EqualFold(raw[i:i+6], []byte("record")) {
			return false
		}
	}
	return true
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
	// One buffer for every member: records are copied out when decoded, so a
	// file of many large members costs one member's size.
	cr.buf.Reset()
	_, err = cr.buf.ReadFrom(io.LimitReader(cr.zr, MaxMemberBytes+1))
	data := cr.buf.Bytes()
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
	cr.member = data
	return nil
}

// nextLine returns the current member's next non-blank line. Lines are cut
// from the member as they are read: no per-line index is built, so a member
// of millions of tiny records costs its own size and nothing more.
func (cr *Reader) nextLine() ([]byte, bool) {
	for len(cr.member) > 0 {
		l, rest, _ := bytes.Cut(cr.member, []byte("\n"))
		cr.member = rest
		if len(bytes.TrimSpace(l)) > 0 {
			return l, true
		}
	}
	cr.member = nil
	return nil, false
}

func (cr *Reader) truncated(what string) {
	cr.warns.add(warnKey{class: "cut short"}, fmt.Sprintf("file cut short in %s: read up to the end of member %d", what, cr.members), nil)
}
