package chat_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// What a member wrote while cut off from the others reaches them when it is
// back, without a later message of its to show a gap (RELIABILITY F3; in
// the NAT lab, node/natlab TestF3PartitionThenHeal): GossipSub does not
// send old messages to a peer that comes back, so the others must ask.

// A member cut off from the room writes two messages, and the member it was
// cut off from one. When it is back, each gets what the other wrote: the
// member that saw the other leave and come back asks it. Neither is ever
// alone in the room (another member, x with w and y with o, stays with
// each), so neither asks for history because it was alone, and no round
// of either is left to retry (every member it asked answered).
func TestHistoryFromMemberBack(t *testing.T) {
	nothingLost(t)
	o := newRoomNode(t, chat.RoomConfig{HistoryRetryMax: time.Second}, noGossip())
	w, g := gatedRoomNode(t, noGossip())
	x, y := newRoomNode(t, chat.RoomConfig{}, noGossip()), newRoomNode(t, chat.RoomConfig{}, noGossip())
	connect(t, w.h, o.h)
	connect(t, w.h, x.h)
	connect(t, o.h, y.h)
	o.join(t, "lobby", nil)
	y.join(t, "lobby", nil)
	send(t, o, "before")
	y.waitHolds(t, "lobby", 1)
	w.join(t, "lobby", nil)
	w.waitHolds(t, "lobby", 1)
	x.join(t, "lobby", nil) // after w holds "before", for x to get it from w
	x.waitHolds(t, "lobby", 1)
	w.waitPeers(t, "lobby", o.h.ID(), x.h.ID())
	o.waitPeers(t, "lobby", w.h.ID(), y.h.ID())

	g.set(o.h.ID()) // w is cut off from o
	w.h.Network().ClosePeer(o.h.ID())
	o.waitGone(t, "lobby", w.h.ID())
	send(t, w, "while away 1")
	send(t, w, "while away 2")
	send(t, o, "meanwhile")
	w.waitHolds(t, "lobby", 3)
	o.waitHolds(t, "lobby", 2)

	g.set()
	connect(t, w.h, o.h)
	o.waitHolds(t, "lobby", 4)
	w.waitHolds(t, "lobby", 4)
	if got, want := o.ids(t, "lobby"), w.ids(t, "lobby"); !slices.Equal(got, want) {
		t.Errorf("o shows %v, w shows %v", got, want)
	}
}

// A member that never left the topic of a room in our view, but holds
// messages we lack (it wrote them before it first met us), shows so in its
// history request: its haves name seqs we do not hold. We ask it in turn.
func TestHistoryRequestShowsWhatWeLack(t *testing.T) {
	nothingLost(t)
	a := newRoomNode(t, chat.RoomConfig{HistoryRetryMax: time.Second}, noGossip())
	b := newRoomNode(t, chat.RoomConfig{}, noGossip())
	connect(t, a.h, b.h)
	b.join(t, "lobby", nil)
	send(t, b, "before")
	a.join(t, "lobby", nil)
	a.waitBackfilled(t, "lobby", 1) // a's first sync is done: a asks nobody again on its own

	r := newRoomNode(t, chat.RoomConfig{HistoryRetryMax: time.Second}, noGossip())
	r.join(t, "lobby", nil)
	send(t, r, "alone 1")
	send(t, r, "alone 2")
	connect(t, r.h, a.h) // r's first sync asks a; its haves show r's two messages
	a.waitHolds(t, "lobby", 3)
	r.waitHolds(t, "lobby", 3)
	if got, want := a.ids(t, "lobby"), r.ids(t, "lobby"); !slices.Equal(got, want) {
		t.Errorf("a shows %v, r shows %v", got, want)
	}
}

// send has n write text in room lobby.
func send(t *testing.T, n *roomNode, text string) {
	t.Helper()
	if _, err := n.svc.Send(t.Context(), "lobby", text); err != nil {
		t.Fatal(err)
	}
}

// waitGone waits until p is no longer among the peers of n's topic of room.
func (n *roomNode) waitGone(t *testing.T, room string, p peer.ID) {
	t.Helper()
	topic, err := n.svc.Topic(room)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitBound)
	for slices.Contains(topic.ListPeers(), p) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still lists %s in %s after %v", n.h.ID(), p, room, waitBound)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
