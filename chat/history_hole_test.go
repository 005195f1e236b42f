package chat_test

import (
	"fmt"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// A member that lacks an old message nobody holds any more (its author
// left before anyone still here got it: a churning room is full of such
// holes) still gets a newer message it missed. Its request lists what it
// holds above the hole (held ranges), so the answer is what it lacks.
// Before, the server sent everything of that author above the hole,
// oldest first: one answer (128 messages) of duplicates, again in every
// round, and the newer message was never repaired (TestSoakChurn, build
// tag soak: the bootstrap node lacked 174 of each stable author's last
// 250 messages for good).
func TestHistoryRepairsPastOldHole(t *testing.T) {
	nothingLost(t)
	cfg := chat.RoomConfig{Rate: 1000, Burst: 1000} // x's messages come at once
	a := newRoomNode(t, cfg, noGossip())
	c := newRoomNode(t, cfg, noGossip())
	connect(t, c.h, a.h)
	a.join(t, "lobby", nil)
	c.join(t, "lobby", nil)

	// x, a bare GossipSub peer that serves no history, writes its messages
	// 2 to 300 and leaves; nobody ever had its 1.
	topic, err := protocols.RoomTopic("lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	xh := newHost(t, nil)
	xtr := newNodeTracer(make(chan rejected, 1<<10))
	xps, err := chat.NewPubSub(t.Context(), xh, pubsub.WithRawTracer(xtr))
	if err != nil {
		t.Fatal(err)
	}
	xt := subscribeTopic(t, xps, topic)
	connect(t, xh, a.h)
	connect(t, xh, c.h)
	a.waitPeers(t, "lobby", xh.ID(), c.h.ID())
	c.waitPeers(t, "lobby", xh.ID(), a.h.ID())
	xtr.waitTopicPeers(t, waitBound, xt, a.h.ID(), c.h.ID()) // x floods its messages to both
	const last = 300
	for seq := uint64(2); seq <= last; seq++ {
		text := fmt.Sprintf("x %d", seq)
		wroteElsewhere(t, "lobby", xh.ID(), seq, text)
		if err := xt.Publish(t.Context(), openPayload(t, "lobby", seq, text)); err != nil {
			t.Fatal(err)
		}
		if seq%20 == 0 || seq == last { // within pubsub's outbound queue (32)
			a.waitHolds(t, "lobby", int(seq-1))
			c.waitHolds(t, "lobby", int(seq-1))
		}
	}
	xh.Close()

	// c is away while a writes.
	c.h.Network().ClosePeer(a.h.ID())
	a.waitGone(t, "lobby", c.h.ID())
	send(t, a, "while c was away")
	connect(t, c.h, a.h)
	c.waitHolds(t, "lobby", last)
}
