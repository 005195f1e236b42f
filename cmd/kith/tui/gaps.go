package tui

import (
	"cmp"
	"slices"

	"github.com/kithnet/kith/node"
)

// maxGaps bounds the missing ranges a room keeps for display; past it the
// oldest reported are forgotten (the node still repairs them).
const maxGaps = 256

// gaps are the ranges of room messages the node told us are missing and
// is asking other members for: per author, seqs From to To, inclusive,
// never overlapping. A message that arrives fills its seq.
type gaps []node.RoomGapInfo

// add records g, merged with the ranges of its author it overlaps or
// touches, less the messages of held already there, so that only what is
// truly missing is counted.
func (gs *gaps) add(g node.RoomGapInfo, held []entry) {
	if g.From == 0 || g.To < g.From {
		return
	}
	merged := g
	*gs = slices.DeleteFunc(*gs, func(o node.RoomGapInfo) bool {
		if o.Author != g.Author || !touch(o, merged) {
			return false
		}
		merged.From, merged.To = min(merged.From, o.From), max(merged.To, o.To)
		merged.Name = cmp.Or(merged.Name, o.Name)
		return true
	})
	*gs = append(*gs, merged)
	for _, e := range held {
		if e.from == g.Author && e.rseq > 0 {
			gs.fill(e.from, e.rseq)
		}
	}
	if over := len(*gs) - maxGaps; over > 0 {
		*gs = slices.Delete(*gs, 0, over)
	}
}

// touch reports whether a and b overlap or are adjacent.
func touch(a, b node.RoomGapInfo) bool {
	if a.From > b.From {
		a, b = b, a
	}
	return b.From <= a.To || b.From-a.To == 1
}

// fill removes seq of author from the ranges it falls in, splitting one
// if seq is inside it; it reports whether seq was missing.
func (gs *gaps) fill(author string, seq uint64) bool {
	for i, g := range *gs {
		if g.Author != author || seq < g.From || seq > g.To {
			continue
		}
		switch {
		case g.From == g.To:
			*gs = slices.Delete(*gs, i, i+1)
		case seq == g.From:
			(*gs)[i].From++
		case seq == g.To:
			(*gs)[i].To--
		default:
			left, right := g, g
			left.To, right.From = seq-1, seq+1
			(*gs)[i] = left
			*gs = slices.Insert(*gs, i+1, right)
		}
		return true
	}
	return false
}

// count is how many messages are missing, saturating at the largest
// uint64.
func (gs gaps) count() uint64 {
	var n uint64
	for _, g := range gs {
		w := g.To - g.From + 1
		if w == 0 || n+w < n { // the whole seq space, or an overflow
			return ^uint64(0)
		}
		n += w
	}
	return n
}
