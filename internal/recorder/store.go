package recorder

import (
	"encoding/binary"
	"slices"
	"time"
	"unsafe"
)

// The store keeps entries back to back in a few large byte chunks instead of
// one heap object per entry: the Go heap then holds a handful of pointer-free
// blocks the collector never scans, the allocator has no per-entry rounding
// or fragmentation to hide, and the byte count is exactly the chunks' sizes.
//
// An entry in a chunk is a header (wall time in ns, length, kind) then the
// encoded bytes. Chunks are only appended to; the oldest chunk is dropped
// whole when a new one would pass the byte bound, so the bound is kept to
// within one chunk.
const (
	entryHeader = 8 + 4 + 1
	kindEvent   = 0
	kindSnap    = 1

	maxChunk = 1 << 20
	minChunk = 4 << 10
	// chunksPerBound keeps the dropped-whole granularity at 1/32 of the bound.
	chunksPerBound = 32
)

// sliceOverhead is what one chunk costs in the chunk list.
const sliceOverhead = int64(unsafe.Sizeof([]byte(nil)))

type store struct {
	chunkSize int
	chunks    [][]byte // live chunks, oldest first, from head
	head      int
	off       int // offset of the oldest live entry in chunks[head]
	entries   int
	bytes     int64  // sum of the live chunks' capacities
	spare     []byte // one dropped chunk kept for reuse
}

func newStore(bound int64) store {
	size := min(max(bound/chunksPerBound, minChunk), maxChunk, bound)
	if size >= 8<<10 {
		size &^= 8<<10 - 1 // whole pages: what the allocator gives a large object
	}
	return store{chunkSize: int(size)}
}

// held is what the store holds: its chunks, the spare and the chunk list's array.
func (s *store) held() int64 {
	return s.bytes + int64(cap(s.spare)) + int64(cap(s.chunks))*sliceOverhead
}

// room says whether data fits in the newest chunk without a new one.
func (s *store) room(n int) bool {
	if len(s.chunks) == s.head {
		return false
	}
	c := s.chunks[len(s.chunks)-1]
	return cap(c)-len(c) >= entryHeader+n
}

// newChunkCost is what a new chunk for an entry of n bytes would add to held.
func (s *store) newChunkCost(n int) int64 {
	switch {
	case entryHeader+n > s.chunkSize:
		return int64(cap(slices.Grow([]byte(nil), entryHeader+n))) // the allocator's rounding
	case s.spare != nil:
		return 0 // counted already
	}
	return int64(s.chunkSize)
}

// push appends an entry and returns its encoded bytes: a view into the chunk,
// which is never written again until it is reused (see release).
func (s *store) push(t time.Time, snap bool, data []byte) []byte {
	n := entryHeader + len(data)
	if !s.room(len(data)) {
		var c []byte
		switch {
		case n > s.chunkSize:
			c = slices.Grow([]byte(nil), n)
		case s.spare != nil:
			c, s.spare = s.spare[:0], nil
		default:
			c = make([]byte, 0, s.chunkSize)
		}
		if s.head > 0 && s.head >= len(s.chunks)/2 {
			k := copy(s.chunks, s.chunks[s.head:])
			clear(s.chunks[k:])
			s.chunks, s.head = s.chunks[:k], 0
		}
		s.chunks = append(s.chunks, c)
		s.bytes += int64(cap(c))
		if len(s.chunks) == s.head+1 {
			s.off = 0
		}
	}
	i := len(s.chunks) - 1
	c := s.chunks[i]
	kind := byte(kindEvent)
	if snap {
		kind = kindSnap
	}
	c = binary.LittleEndian.AppendUint64(c, uint64(t.UnixNano()))
	c = binary.LittleEndian.AppendUint32(c, uint32(len(data)))
	c = append(c, kind)
	c = append(c, data...)
	s.chunks[i] = c
	s.entries++
	return c[len(c)-len(data):]
}

// oldest reads the oldest entry's time; ok is false when the store is empty.
func (s *store) oldest() (t time.Time, ok bool) {
	if s.entries == 0 {
		return time.Time{}, false
	}
	c := s.chunks[s.head]
	return time.Unix(0, int64(binary.LittleEndian.Uint64(c[s.off:]))), true
}

// popOldest drops the oldest entry. reuse says its chunk, once empty, may be
// kept as the spare.
func (s *store) popOldest(reuse bool) {
	c := s.chunks[s.head]
	n := int(binary.LittleEndian.Uint32(c[s.off+8:]))
	s.off += entryHeader + n
	s.entries--
	if s.off == len(c) && (s.head < len(s.chunks)-1 || s.entries == 0) {
		s.release(reuse)
	}
}

// dropHead drops the oldest chunk with every entry still in it and returns
// how many entries went.
func (s *store) dropHead(reuse bool) int {
	c := s.chunks[s.head]
	n := 0
	for off := s.off; off < len(c); n++ {
		off += entryHeader + int(binary.LittleEndian.Uint32(c[off+8:]))
	}
	s.entries -= n
	s.release(reuse)
	return n
}

// release drops the head chunk. reuse says no capture can be reading it, so it
// may become the spare: a spare is in no capture's view, so it is safe to
// write at any time.
func (s *store) release(reuse bool) {
	c := s.chunks[s.head]
	s.chunks[s.head] = nil
	s.head++
	s.off = 0
	s.bytes -= int64(cap(c))
	if reuse && cap(c) == s.chunkSize {
		s.spare = c
	}
	if s.head == len(s.chunks) {
		s.chunks, s.head = s.chunks[:0], 0
	}
}

// view is the live entries' bytes: the chunks, the oldest cut at its first
// live entry and each at its current length. Appends never write below a
// chunk's length, so a view stays as it is while no chunk is reused.
func (s *store) view() [][]byte {
	v := make([][]byte, 0, len(s.chunks)-s.head)
	for i := s.head; i < len(s.chunks); i++ {
		c := s.chunks[i]
		if i == s.head {
			c = c[s.off:]
		}
		v = append(v, c[:len(c):len(c)])
	}
	return v
}

// eachEntry calls fn for every entry of a view, oldest first, until fn fails.
func eachEntry(v [][]byte, fn func(t time.Time, snap bool, data []byte) error) error {
	for _, c := range v {
		for off := 0; off < len(c); {
			t := int64(binary.LittleEndian.Uint64(c[off:]))
			n := int(binary.LittleEndian.Uint32(c[off+8:]))
			snap := c[off+12] == kindSnap
			if err := fn(time.Unix(0, t), snap, c[off+entryHeader:off+entryHeader+n]); err != nil {
				return err
			}
			off += entryHeader + n
		}
	}
	return nil
}
