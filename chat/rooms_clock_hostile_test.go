package chat_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawClockPayload hand-encodes a version 2 open-room payload with any
// clock, even one no writer may send.
func rawClockPayload(room string, seq uint64, sentAt, clock int64, text string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, protocols.RoomVersion)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, room)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, seq)
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(sentAt))
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendString(b, text)
	b = protowire.AppendTag(b, 6, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(clock))
}

// TestHostileRoomClock: a hostile author (a peer speaking GossipSub
// itself, signing with its own key) stamps clocks to take over the end of
// an open room whose members are A and B (right clocks) and S (a day
// behind):
//
//   - seq 1, clock 10 years ahead: every member drops it without penalty
//     (ignored: an honest clock may be that wrong), and stores nothing;
//   - seq 2, clock 2^63-1 (past year 9999, the most an int64 holds): no
//     writer may send it, so every member rejects it as malformed and
//     scores the hostile peer down; nothing overflows;
//   - seq 3, clock 6 days less an hour ahead, within protocols.MaxRoomClockLead:
//     A and B take it, S (whose bound is a day earlier) drops it unpenalised.
//
// The damage is bounded: the pinned message stays last on A and B, but
// the honest members still talk below one another in the order they write,
// heard by all three: B's answer is stamped only protocols.MaxRoomClockFollow
// (3 days) ahead of its clock, not after the pinned message, S accepts
// it, and A's next message follows B's. No honest clock runs more than 3
// days ahead, and no member holds a clock more than 6 days ahead of its
// own.
func TestHostileRoomClock(t *testing.T) {
	nothingLost(t)
	a, b, s := newSkewedRoomNode(t, 0), newSkewedRoomNode(t, 0), newSkewedRoomNode(t, -24*time.Hour)
	members := []*roomNode{a, b, s}
	evil, room := ringWithRawPeer(t, members)
	for i, n := range members {
		n.waitMesh(t, "lobby", members[(i+1)%3].h.ID(), members[(i+2)%3].h.ID())
	}
	a.sayAfter(t, "lobby", 0, "before")
	for _, n := range members {
		n.waitHolds(t, "lobby", 1)
	}

	now := time.Now()
	ms := now.UnixMilli()
	pinnedClock := now.Add(protocols.MaxRoomClockLead - time.Hour).UnixMilli()
	forged := []*pb.Message{
		signedMessage(t, evil.h.ID(), evil.key, room.Topic, rawClockPayload("lobby", 1, ms, now.AddDate(10, 0, 0).UnixMilli(), "far future")),
		signedMessage(t, evil.h.ID(), evil.key, room.Topic, rawClockPayload("lobby", 2, ms, 1<<63-1, "end of time")),
		signedMessage(t, evil.h.ID(), evil.key, room.Topic, rawClockPayload("lobby", 3, ms, pinnedClock, "pinned")),
	}
	for seq, text := range []string{"far future", "end of time", "pinned"} {
		wroteElsewhere(t, "lobby", evil.h.ID(), uint64(seq+1), text)
	}
	for _, n := range members {
		evil.publish(t, n.h.ID(), forged...)
	}
	ignored, failed := pubsub.RejectValidationIgnored, pubsub.RejectValidationFailed
	for i, want := range [][]string{{failed, ignored}, {failed, ignored}, {failed, ignored, ignored}} {
		var got []string
		for range want {
			got = append(got, members[i].waitReject(t, func(r rejected) bool { return r.author == evil.h.ID() }).reason)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("member %d dropped the hostile clocks for %q, want %q", i, got, want)
		}
	}
	a.waitHolds(t, "lobby", 2)
	b.waitHolds(t, "lobby", 2)

	reply := b.sayAfter(t, "lobby", 2, "below the pinned one")
	if limit := time.Now().Add(protocols.MaxRoomClockFollow + time.Second).UnixMilli(); reply.Clock > limit || reply.Clock >= pinnedClock {
		t.Errorf("B stamped clock %+.0f s ahead, want at most MaxRoomClockFollow (%v) and before the pinned message's (%+.0f s)",
			clockOff(reply.Clock), protocols.MaxRoomClockFollow, clockOff(pinnedClock))
	}
	s.waitHolds(t, "lobby", 2) // "before" and B's answer
	a.waitHolds(t, "lobby", 3)
	next := a.sayAfter(t, "lobby", 3, "and after it")
	if next.Clock <= reply.Clock {
		t.Errorf("A stamped clock %d, not after B's %d which it held", next.Clock, reply.Clock)
	}
	b.waitHolds(t, "lobby", 4)
	s.waitHolds(t, "lobby", 3)
	wantShown(t, "lobby", []string{"before", reply.Text, next.Text, "pinned"}, a, b)
	wantShown(t, "lobby", []string{"before", reply.Text, next.Text}, s)
	for _, n := range members {
		for _, m := range n.listed(t, "lobby") {
			if m.Clock > time.Now().Add(protocols.MaxRoomClockLead).UnixMilli() {
				t.Errorf("%s holds %q with clock %+.0f s ahead, past MaxRoomClockLead", n.h.ID(), m.Text, clockOff(m.Clock))
			}
		}
	}
	t.Logf("pinned at %+.0f s; honest answers at %+.0f s and %+.0f s off the real time",
		clockOff(pinnedClock), clockOff(reply.Clock), clockOff(next.Clock))
	if msgs, _ := a.svc.Messages(t.Context(), "lobby", chat.RoomFilter{}); len(msgs) != 4 {
		t.Errorf("A holds %d messages, want 4", len(msgs))
	}
}

// A member whose clock is ahead of ours rightly holds messages whose clock
// is more than protocols.MaxRoomClockLead ahead of ours, and hands them on
// as history: we drop those, but do not count them against it (history
// cuts off a server after 3 messages that fail verification). Here 5
// messages a week ahead come before 2 valid ones (one an hour ahead): the
// answer is read to its end, not cut off, and the 2 are stored.
func TestHistoryClockAheadNotHeldAgainstServer(t *testing.T) {
	nothingLost(t)
	topic := protocols.OpenRoomTopicPrefix + "lobby"
	now := time.Now()
	msg := func(clock int64, text string) []byte {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		return signedRaw(t, key, topic, openPayloadClock(t, "lobby", 1, text, now, clock), 1)
	}
	var answer [][]byte
	for range 5 {
		answer = append(answer, msg(now.Add(7*24*time.Hour).UnixMilli(), "a week ahead"))
	}
	answer = append(answer, msg(now.UnixMilli(), "valid"), msg(now.Add(time.Hour).UnixMilli(), "valid, an hour ahead"))
	hs := newHostileServer(t, topic, func() [][]byte { return answer }, false)
	v := newRoomNode(t, chat.RoomConfig{})
	connect(t, v.h, hs.n.h)
	v.join(t, "lobby", nil)
	v.waitBackfilled(t, "lobby", 2)
	v.waitHolds(t, "lobby", 2)
	if err := <-hs.served; err != nil {
		t.Errorf("the answer was cut off: %v", err)
	}
	wantShown(t, "lobby", []string{"valid", "valid, an hour ahead"}, v)
}
