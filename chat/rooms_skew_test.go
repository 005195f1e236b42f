package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/invariants"
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
