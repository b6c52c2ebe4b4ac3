package event

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnknownType is returned by Decode for a type this observer does not know,
// typically from a capture written by a newer observer.
var ErrUnknownType = errors.New("unknown event type")

// Unknown is an event of a type this observer does not know. It keeps the
// original JSON, so reports and replays can still show it and re-encode it
// unchanged; detectors may match on Header.Type.
type Unknown struct {
	Header
	Raw json.RawMessage `json:"-"`
}

// MarshalJSON returns the original object.
func (u *Unknown) MarshalJSON() ([]byte, error) { return u.Raw, nil }

// NewUnknown keeps line as an event of unknown type; only its header is parsed.
func NewUnknown(line []byte) (*Unknown, error) {
	u := &Unknown{Raw: append(json.RawMessage(nil), line...)}
	if err := json.Unmarshal(line, &u.Header); err != nil {
		return nil, fmt.Errorf("decode event header: %w", err)
	}
	return u, nil
}

// DecodeOrKeep is Decode for readers of captures: an event of an unknown type is
// kept as *Unknown (known is false) instead of failing.
func DecodeOrKeep(line []byte) (ev Event, known bool, err error) {
	ev, err = Decode(line)
	if errors.Is(err, ErrUnknownType) {
		u, err := NewUnknown(line)
		if err != nil {
			return nil, false, err
		}
		return u, false, nil
	}
	return ev, err == nil, err
}
