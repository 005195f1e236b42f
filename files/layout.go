package files

import (
	"github.com/kithnet/kith/protocols"
)

// chunkRef names one chunk of a manifest.
type chunkRef struct {
	entry int
	index uint64
	g     int // its number across the whole manifest
	size  int
}

// layout numbers a manifest's chunks across its entries, in order: entry
// i's chunk j is chunk base[i]+j.
type layout struct {
	m     *protocols.Manifest
	base  []int
	total int
}

func newLayout(m *protocols.Manifest) *layout {
	l := &layout{m: m, base: make([]int, len(m.Entries))}
	for i, e := range m.Entries {
		l.base[i] = l.total
		l.total += int(protocols.ChunkCount(e.Size))
	}
	return l
}

// ref returns entry e's chunk i.
func (l *layout) ref(e int, i uint64) chunkRef {
	size := l.m.Entries[e].Size - int64(i)*protocols.ChunkSize
	return chunkRef{entry: e, index: i, g: l.base[e] + int(i), size: int(min(size, protocols.ChunkSize))}
}

// bitmap is the set of verified chunks, as stored: bit i is byte i/8,
// 1<<(i%8).
type bitmap []byte

// loadBitmap returns the stored bitmap of a layout, or an empty one when
// the stored one does not fit it.
func loadBitmap(b []byte, total int) bitmap {
	n := (total + 7) / 8
	if len(b) != n {
		return make(bitmap, n)
	}
	return bitmap(append([]byte(nil), b...))
}

func (b bitmap) has(i int) bool { return b[i/8]&(1<<(i%8)) != 0 }
func (b bitmap) set(i int)      { b[i/8] |= 1 << (i % 8) }
func (b bitmap) clear(i int)    { b[i/8] &^= 1 << (i % 8) }

// verifiedBytes sums the sizes of the verified chunks.
func (l *layout) verifiedBytes(b bitmap) int64 {
	var n int64
	for e, en := range l.m.Entries {
		for i := range uint64(protocols.ChunkCount(en.Size)) {
			if b.has(l.base[e] + int(i)) {
				n += int64(l.ref(e, i).size)
			}
		}
	}
	return n
}

// cursor walks the chunks missing from a bitmap, in order.
type cursor struct {
	l     *layout
	b     bitmap
	entry int
	index uint64
}

func (l *layout) missing(b bitmap) *cursor { return &cursor{l: l, b: b} }

// next returns the next missing chunk, or false when none is left.
func (c *cursor) next() (chunkRef, bool) {
	for ; c.entry < len(c.l.m.Entries); c.entry, c.index = c.entry+1, 0 {
		n := uint64(protocols.ChunkCount(c.l.m.Entries[c.entry].Size))
		for ; c.index < n; c.index++ {
			r := c.l.ref(c.entry, c.index)
			if !c.b.has(r.g) {
				c.index++
				return r, true
			}
		}
	}
	return chunkRef{}, false
}

// peek returns the next missing chunk without taking it.
func (c *cursor) peek() (chunkRef, bool) {
	saved := *c
	r, ok := c.next()
	*c = saved
	return r, ok
}
