package chat

import (
	"context"
	"io"
	"reflect"
	"testing"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"
)

// holdingStore answers what haves and holdsMore read: high-water marks and
// gaps (the rest of RoomStore is not called).
type holdingStore struct {
	RoomStore
	hw   map[peer.ID]uint64
	gaps []Gap
}

func (s holdingStore) HighWaters(context.Context, string) (map[peer.ID]uint64, error) {
	return s.hw, nil
}

func (s holdingStore) RoomGaps(context.Context, string) ([]Gap, error) { return s.gaps, nil }

// A request lists each author's prefix and the ranges held above it; a
// server owes the requester a sync when the request shows a seq the
// server lacks, in the prefix or in a held range.
func TestHistoryHavesAndHoldsMore(t *testing.T) {
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	s := &RoomService{store: holdingStore{
		hw:   map[peer.ID]uint64{a: 10, b: 4, c: 9},
		gaps: []Gap{{Author: a, From: 3, To: 4}, {Author: a, From: 7, To: 7}, {Author: c, From: 1, To: 2}},
	}}
	j := &joined{Room: Room{Name: "lobby"}, hist: newHistory()}
	got, err := s.haves(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocols.HistoryHave{
		{Author: a, Through: 2, Held: []protocols.HistoryRange{{From: 5, To: 6}, {From: 8, To: 10}}},
		{Author: b, Through: 4},
		{Author: c, Through: 0, Held: []protocols.HistoryRange{{From: 3, To: 9}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("haves %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		name string
		have protocols.HistoryHave
		more bool
	}{
		{"a prefix within ours", protocols.HistoryHave{Author: a, Through: 2}, false},
		{"a prefix across our gap", protocols.HistoryHave{Author: a, Through: 3}, true},
		{"held within what we hold", protocols.HistoryHave{Author: a, Held: []protocols.HistoryRange{{From: 5, To: 6}, {From: 8, To: 10}}}, false},
		{"held across our gap 7", protocols.HistoryHave{Author: a, Through: 2, Held: []protocols.HistoryRange{{From: 6, To: 8}}}, true},
		{"held above our high-water mark", protocols.HistoryHave{Author: b, Held: []protocols.HistoryRange{{From: 2, To: 5}}}, true},
		{"an author we never heard", protocols.HistoryHave{Author: peer.ID("d"), Held: []protocols.HistoryRange{{From: 2, To: 2}}}, true},
	} {
		if got := s.holdsMore(t.Context(), j, []protocols.HistoryHave{tc.have}); got != tc.more {
			t.Errorf("%s: holdsMore %v, want %v", tc.name, got, tc.more)
		}
	}
	// We joined taking the room's recent past (a floor): what is before
	// each author's first message we hold is not wanted, so a requester
	// that holds it holds nothing more for us; an interior gap still is.
	held := protocols.HistoryHave{Author: c, Through: 9}
	if !s.holdsMore(t.Context(), j, []protocols.HistoryHave{held}) {
		t.Error("c's prefix, without a floor: holdsMore false, want true")
	}
	j.hist.floor.Store(1)
	if s.holdsMore(t.Context(), j, []protocols.HistoryHave{held}) {
		t.Error("c's prefix, below our floor: holdsMore true, want false")
	}
	if !s.holdsMore(t.Context(), j, []protocols.HistoryHave{{Author: a, Through: 3}}) {
		t.Error("a's interior gap, with a floor: holdsMore false, want true")
	}
	// The haves still say exactly what we hold.
	if got, err := s.haves(t.Context(), j); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("haves with a floor %+v (%v), want %+v", got, err, want)
	}
}

// Held ranges stop at MaxHistoryHeld in a request: every author's first
// range, then every author's second, and so on; the request is valid.
func TestHistoryHavesHeldBudget(t *testing.T) {
	hw := map[peer.ID]uint64{}
	var gaps []Gap
	for range 300 { // 300 authors with 3 gaps each: 900 ranges held
		p := test.RandPeerIDFatal(t)
		hw[p] = 100
		for k := range uint64(3) {
			gaps = append(gaps, Gap{Author: p, From: 10 + 20*k, To: 10 + 20*k})
		}
	}
	s := &RoomService{store: holdingStore{hw: hw, gaps: gaps}}
	got, err := s.haves(t.Context(), &joined{Room: Room{Name: "lobby"}, hist: newHistory()})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{} // ranges per author → authors
	total := 0
	for _, h := range got {
		counts[len(h.Held)]++
		total += len(h.Held)
	}
	if total != protocols.MaxHistoryHeld || counts[1] != 300-(protocols.MaxHistoryHeld-300) || counts[2] != protocols.MaxHistoryHeld-300 {
		t.Errorf("%d held ranges (authors by count of ranges: %v), want %d: 1 for each author, a second for the first %d",
			total, counts, protocols.MaxHistoryHeld, protocols.MaxHistoryHeld-300)
	}
	req := &protocols.HistoryRequest{Topic: protocols.OpenRoomTopicPrefix + "lobby", Have: got, Max: protocols.MaxHistoryMessages}
	if err := protocols.NewHistoryWriter(io.Discard).Write(protocols.HistoryFrame{Request: req}); err != nil {
		t.Errorf("the request is refused: %v", err)
	}
}
