package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/invariants"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newSkewedRoomNode is newRoomNode with the room service's clock off the
// real one by skew.
func newSkewedRoomNode(t *testing.T, skew time.Duration) *roomNode {
	t.Helper()
	return buildRoomNode(t, newHost(t, nil), chat.RoomConfig{}, nil,
		chat.WithRoomClock(func() time.Time { return time.Now().Add(skew) }))
}

// TestF7RoomClockSkew: F7 for rooms, through an injected clock. The author's
// clock is off by ±1 h or ±1 day against the reader's. Order comes from
// the author's seq, never from a clock: whatever the skew, a reader stores
// and shows every message of an author behind it (or ahead by less than
// protocols.MaxRoomClockSkew) once, in the order sent (N6), with sent_at as
// the author stated it. A message stamped more than MaxRoomClockSkew ahead
// of the reader's clock is dropped by the validator (the future-skew
// window), without penalty: an author whose clock runs an hour or a day
// fast is not heard, but not graylisted either.
func TestF7RoomClockSkew(t *testing.T) {
	nothingLost(t)
	for _, tc := range []struct {
		name  string
		skew  time.Duration // author's clock minus the reader's
		heard bool
	}{
		{"author 1 day behind", -24 * time.Hour, true},
		{"author 1 h behind", -time.Hour, true},
		{"author 4 min ahead", 4 * time.Minute, true},
		{"author 1 h ahead", time.Hour, false},
		{"author 1 day ahead", 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			author, reader := newSkewedRoomNode(t, tc.skew), newSkewedRoomNode(t, 0)
			connect(t, author.h, reader.h)
			author.join(t, "lobby", nil)
			reader.join(t, "lobby", nil)
			author.waitMesh(t, "lobby", reader.h.ID())
			const each = 5
			var sent []uint64
			for k := range each {
				m, err := author.svc.Send(t.Context(), "lobby", fmt.Sprintf("m%d", k))
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, m.Seq)
			}
			if !tc.heard {
				reader.waitReject(t, func(r rejected) bool { return r.author == author.h.ID() })
				if msgs, _ := reader.svc.Messages(t.Context(), "lobby", chat.RoomFilter{}); len(msgs) != 0 {
					t.Errorf("the reader stored %d messages stamped %s ahead (window %s)", len(msgs), tc.skew, protocols.MaxRoomClockSkew)
				}
				return
			}
			var transcript []invariants.Said[peer.ID, uint64]
			for range each {
				m := reader.nextMessage(t)
				transcript = append(transcript, invariants.Said[peer.ID, uint64]{From: m.Author, Msg: m.Seq})
				if d := m.SentAt.Sub(time.Now().Add(tc.skew)); d > time.Minute || d < -time.Minute {
					t.Errorf("message %d stored with sent_at %s, %s off the author's clock", m.Seq, m.SentAt, d)
				}
			}
			invariants.PerSenderOrder(t, map[peer.ID][]uint64{author.h.ID(): sent}, transcript) // N6
			msgs, _ := reader.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
			var stored []uint64
			for _, m := range msgs {
				stored = append(stored, m.Seq)
			}
			invariants.ExactlyOnce(t, stored, sent) // N3 (as the reader holds them)
		})
	}
}

// TestF7RoomClockBackAcrossRestart: an author whose clock is set back a
// day between two runs (a clock that ran fast, corrected while kith was
// stopped) still states times in seq order, so every member shows its
// messages in the order sent (N6): its first message after the restart
// states its previous message's time, not an earlier one. Found by the N6
// check: Send kept its previous time in memory only, so the message after a
// restart could state an earlier time and every member's RoomOrder showed
// it before the author's earlier ones.
func TestF7RoomClockBackAcrossRestart(t *testing.T) {
	nothingLost(t)
	key, _, _ := crypto.GenerateEd25519Key(nil)
	store := newMemRoomStore()
	reader := newSkewedRoomNode(t, 0)
	start := func(skew time.Duration) *roomNode {
		n := buildRoomNodeOn(t, newHost(t, key), store, chat.RoomConfig{}, nil,
			chat.WithRoomClock(func() time.Time { return time.Now().Add(skew) }))
		connect(t, n.h, reader.h)
		n.join(t, "lobby", nil)
		n.waitMesh(t, "lobby", reader.h.ID())
		return n
	}
	reader.join(t, "lobby", nil)
	author := start(0)
	first, err := author.svc.Send(t.Context(), "lobby", "before the restart")
	if err != nil {
		t.Fatal(err)
	}
	if m := reader.nextMessage(t); m.Seq != first.Seq {
		t.Fatalf("the reader got %+v, want seq %d", m, first.Seq)
	}
	author.svc.Close()
	author.h.Close()

	author = start(-24 * time.Hour)
	second, err := author.svc.Send(t.Context(), "lobby", "after the restart, a day back")
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != first.Seq+1 || second.SentAt.Before(first.SentAt) {
		t.Errorf("after the restart the author stated seq %d at %v; its previous, seq %d, at %v", second.Seq, second.SentAt, first.Seq, first.SentAt)
	}
	for m := reader.nextMessage(t); m.Seq != second.Seq; m = reader.nextMessage(t) {
	}
	msgs, err := reader.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
	if err != nil || len(msgs) != 2 || msgs[0].Seq != first.Seq || msgs[1].Seq != second.Seq {
		t.Errorf("the reader shows %+v (%v), want seq %d then %d", msgs, err, first.Seq, second.Seq)
	}
}
