package tui

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

func TestGapsMergeFillCount(t *testing.T) {
	const a, b = "A", "B"
	var gs gaps
	gs.add(node.RoomGapInfo{Author: a, From: 5, To: 9}, nil)
	gs.add(node.RoomGapInfo{Author: a, From: 10, To: 12}, nil) // adjacent: merged
	gs.add(node.RoomGapInfo{Author: a, From: 7, To: 8}, nil)   // inside: merged
	gs.add(node.RoomGapInfo{Author: b, From: 5, To: 9}, nil)   // another author: kept apart
	if want := (gaps{{Author: a, From: 5, To: 12}, {Author: b, From: 5, To: 9}}); !slices.Equal(sorted(gs), want) {
		t.Fatalf("ranges %+v, want %+v", gs, want)
	}
	if n := gs.count(); n != 13 {
		t.Fatalf("count %d, want 8 of A's and 5 of B's", n)
	}
	for _, seq := range []uint64{5, 12, 8} { // an end, the other end, the middle (split)
		if !gs.fill(a, seq) {
			t.Fatalf("A's seq %d was missing", seq)
		}
	}
	if gs.fill(a, 8) || gs.fill(a, 4) || gs.fill("C", 6) {
		t.Fatal("a seq not missing was counted as filled")
	}
	if want := (gaps{{Author: a, From: 6, To: 7}, {Author: a, From: 9, To: 11}, {Author: b, From: 5, To: 9}}); !slices.Equal(sorted(gs), want) {
		t.Fatalf("after fills: ranges %+v, want %+v", gs, want)
	}
	for _, seq := range []uint64{6, 7, 9, 10, 11} {
		gs.fill(a, seq)
	}
	if n := gs.count(); n != 5 {
		t.Fatalf("count %d after A's all came, want B's 5", n)
	}
}

func TestGapsCountOnlyWhatIsNotHeld(t *testing.T) {
	var gs gaps
	held := []entry{{from: "A", rseq: 3}, {from: "B", rseq: 4}, {from: "A", rseq: 20}}
	gs.add(node.RoomGapInfo{Author: "A", From: 2, To: 4}, held)
	if want := (gaps{{Author: "A", From: 2, To: 2}, {Author: "A", From: 4, To: 4}}); !slices.Equal(sorted(gs), want) {
		t.Fatalf("ranges %+v, want 2 and 4 (3 is held; B's 4 is another author's)", gs)
	}
}

func TestGapsBounded(t *testing.T) {
	var gs gaps
	gs.add(node.RoomGapInfo{Author: "A", From: 1, To: 1<<63 - 1}, nil)
	gs.add(node.RoomGapInfo{Author: "B", From: 1, To: 1<<63 - 1}, nil)
	gs.add(node.RoomGapInfo{Author: "C", From: 1, To: 1<<63 - 1}, nil)
	if n := gs.count(); n != ^uint64(0) {
		t.Fatalf("count %d, want it saturated", n)
	}
	gs = nil
	for i := range uint64(3 * maxGaps) {
		gs.add(node.RoomGapInfo{Author: "A", From: 10 * (i + 1), To: 10*(i+1) + 1}, nil)
	}
	gs.add(node.RoomGapInfo{Author: "A", From: 0, To: 5}, nil) // seq 0 is never a message
	gs.add(node.RoomGapInfo{Author: "A", From: 9, To: 8}, nil) // empty
	if len(gs) != maxGaps || gs[len(gs)-1].From != 10*3*maxGaps {
		t.Fatalf("kept %d ranges ending at %+v, want the %d newest", len(gs), gs[len(gs)-1], maxGaps)
	}
}

// TestRoomGapShown: a gap event tells the user on the notice line and in
// the room's header, and the header's count goes as the messages come.
func TestRoomGapShown(t *testing.T) {
	h := start(t, newFake(), Options{})
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindGap, Room: "general",
		RoomGap: &node.RoomGapInfo{Author: anaID, Name: "ana\x1b[2J", From: 2, To: 4}})
	if !strings.Contains(h.m.notice, "#general: 3 messages from ana missing; asking other members") {
		t.Fatalf("notice %q, want the gap named with ana's contact name", h.m.notice)
	}
	if v := h.view(); !strings.Contains(v, "3 messages missing, asking members") {
		t.Fatalf("header lacks the missing count:\n%s", v)
	}
	for i, seq := range []uint64{3, 2, 4} {
		msg := node.RoomMessageInfo{ID: "r" + string(rune('a'+i)), Room: "general", From: anaID, Name: "ana",
			Seq: seq, Text: "backfilled", SentAt: time.Now()}
		h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &msg})
		left := 2 - i
		v := h.view()
		if left > 0 && !strings.Contains(v, plural(left, "message")+" missing") {
			t.Fatalf("after seq %d: header should say %d missing:\n%s", seq, left, v)
		}
		if left == 0 && strings.Contains(v, "missing, asking") {
			t.Fatalf("every missing message came, yet the header still says some are missing:\n%s", v)
		}
	}

	// A stranger's hostile name is escaped on the notice line.
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindGap, Room: "general",
		RoomGap: &node.RoomGapInfo{Author: eveID, Name: "eve\x1b]52;c;cGF5\x07", From: 1, To: 1}})
	if strings.ContainsAny(h.m.notice, "\x1b\x07") || !strings.Contains(h.m.notice, "1 message from eve") {
		t.Fatalf("notice %q: the name must be escaped", h.m.notice)
	}
}

func sorted(gs gaps) gaps {
	out := slices.Clone(gs)
	slices.SortFunc(out, func(x, y node.RoomGapInfo) int {
		return cmp.Or(strings.Compare(x.Author, y.Author), cmp.Compare(x.From, y.From))
	})
	return out
}
