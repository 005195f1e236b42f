package chat

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// hwStore answers HighWater and counts the reads.
type hwStore struct {
	RoomStore
	hw    map[peer.ID]uint64
	reads int
}

func (s *hwStore) HighWater(_ context.Context, _ string, a peer.ID) (uint64, error) {
	s.reads++
	return s.hw[a], nil
}

// The validator's bound: read from the store once per author, raised by
// every write, never below what is stored; a seq above it is new without
// a store read.
func TestHeldBelow(t *testing.T) {
	a, b := peer.ID("a"), peer.ID("b")
	st := &hwStore{hw: map[peer.ID]uint64{a: 5}}
	h := newHeldBelow()
	ctx := t.Context()
	check := func(name string, p peer.ID, seq uint64, want bool, reads int) {
		t.Helper()
		got, err := h.mayHold(ctx, st, "lobby", p, seq)
		if err != nil || got != want || st.reads != reads {
			t.Errorf("%s: mayHold(%s, %d) = %v, %v after %d store reads; want %v after %d", name, p, seq, got, err, st.reads, want, reads)
		}
	}
	h.raise(a, 9) // not held yet: the store is read when needed
	check("first look at a", a, 6, false, 1)
	check("a's stored 5", a, 5, true, 1)
	h.raise(a, 7)
	check("a's 7, being stored", a, 7, true, 1)
	check("a's 8", a, 8, false, 1)
	h.raise(a, 6) // below the bound: no change
	check("a's 8 again", a, 8, false, 1)
	check("b, nothing stored", b, 1, false, 2)
	for i := range maxHeldBelow { // past the cap every author is forgotten, and read again
		h.raise(peer.ID(rune(i)), 1)
		if _, err := h.mayHold(ctx, st, "lobby", peer.ID(rune(i+1000)), 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.m); n > maxHeldBelow {
		t.Errorf("%d authors held, more than %d", n, maxHeldBelow)
	}
	reads := st.reads
	check("a after the cap", a, 6, false, reads+1)
}
