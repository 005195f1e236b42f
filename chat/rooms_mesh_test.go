package chat_test

import (
	"maps"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// meshBound bounds a message's way across a formed mesh: one hop, or two.
const meshBound = 20 * time.Second

// expectMessage waits at most meshBound for n to report text from author,
// skipping other messages.
func (n *roomNode) expectMessage(t testing.TB, author peer.ID, text string) chat.RoomMessage {
	t.Helper()
	timeout := time.After(meshBound)
	for {
		select {
		case e := <-n.events:
			if m := e.Message; m != nil && m.Author == author && m.Text == text {
				return *m
			}
		case <-timeout:
			t.Fatalf("%s: no %q from %s within %v", n.h.ID(), text, author, meshBound)
		}
	}
}

// A, B and C connected in a line (A and C not connected) in an open room:
// what A sends reaches C through B, and what C sends reaches A. The test
// sends once B has both in its mesh: B forwards to its mesh only, and
// gossip (IHAVE) goes to peers outside it, so a message B relays before it
// grafts C never reaches C (see waitMesh).
func TestRoomMeshForwardsThroughThirdPeer(t *testing.T) {
	nothingLost(t)
	scores := make(chan map[peer.ID]float64, 1) // b's scores of its peers
	inspect := pubsub.PeerScoreInspectFn(func(m map[peer.ID]float64) {
		select {
		case scores <- maps.Clone(m):
		default:
		}
	})
	a, c := newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{})
	b := newRoomNode(t, chat.RoomConfig{}, pubsub.WithPeerScoreInspect(inspect, 100*time.Millisecond))
	connect(t, a.h, b.h)
	connect(t, b.h, c.h)
	for _, n := range []*roomNode{a, b, c} {
		n.join(t, "lobby", nil)
	}
	a.waitPeers(t, "lobby", b.h.ID())
	b.waitPeers(t, "lobby", a.h.ID(), c.h.ID())
	c.waitPeers(t, "lobby", b.h.ID())
	b.waitMesh(t, "lobby", a.h.ID(), c.h.ID())

	if _, err := a.svc.Send(t.Context(), "lobby", "hello from a"); err != nil {
		t.Fatal(err)
	}
	b.expectMessage(t, a.h.ID(), "hello from a")
	if m := c.expectMessage(t, a.h.ID(), "hello from a"); m.Seq != 1 {
		t.Errorf("c got seq %d, want 1", m.Seq)
	}
	if _, err := c.svc.Send(t.Context(), "lobby", "hello from c"); err != nil {
		t.Fatal(err)
	}
	b.expectMessage(t, c.h.ID(), "hello from c")
	a.expectMessage(t, c.h.ID(), "hello from c")

	// Scoring stays on and judges both honest peers at 0 or above: above
	// every threshold of RoomScoreThresholds.
	timeout := time.After(meshBound)
	for i := range 2 { // the first snapshot may predate the messages
		select {
		case m := <-scores:
			for _, p := range []peer.ID{a.h.ID(), c.h.ID()} {
				if s, ok := m[p]; i == 1 && (!ok || s < 0) {
					t.Errorf("b scores %s at %v (known: %v), want >= 0", p, s, ok)
				}
			}
		case <-timeout:
			t.Fatal("no score snapshot from b")
		}
	}
}

// A and B talk in an open room; C connects to both and joins later: A and
// B list C among the room topic's peers, C lists them, and C gets what A
// and B send from then on, and they get what C sends.
func TestRoomLateJoiner(t *testing.T) {
	nothingLost(t)
	a, b := newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{})
	connect(t, a.h, b.h)
	a.join(t, "lobby", nil)
	b.join(t, "lobby", nil)
	a.waitPeers(t, "lobby", b.h.ID())
	b.waitPeers(t, "lobby", a.h.ID())
	for _, text := range []string{"one", "two"} {
		if _, err := a.svc.Send(t.Context(), "lobby", text); err != nil {
			t.Fatal(err)
		}
		b.expectMessage(t, a.h.ID(), text)
		if _, err := b.svc.Send(t.Context(), "lobby", text+" back"); err != nil {
			t.Fatal(err)
		}
		a.expectMessage(t, b.h.ID(), text+" back")
	}

	c := newRoomNode(t, chat.RoomConfig{})
	connect(t, c.h, a.h)
	connect(t, c.h, b.h)
	c.join(t, "lobby", nil)
	a.waitPeers(t, "lobby", b.h.ID(), c.h.ID())
	b.waitPeers(t, "lobby", a.h.ID(), c.h.ID())
	c.waitPeers(t, "lobby", a.h.ID(), b.h.ID())

	if _, err := a.svc.Send(t.Context(), "lobby", "welcome, c"); err != nil {
		t.Fatal(err)
	}
	if m := c.expectMessage(t, a.h.ID(), "welcome, c"); m.Seq != 3 {
		t.Errorf("c got seq %d, want 3", m.Seq)
	}
	if _, err := b.svc.Send(t.Context(), "lobby", "hi c"); err != nil {
		t.Fatal(err)
	}
	c.expectMessage(t, b.h.ID(), "hi c")
	if _, err := c.svc.Send(t.Context(), "lobby", "thanks"); err != nil {
		t.Fatal(err)
	}
	a.expectMessage(t, c.h.ID(), "thanks")
	b.expectMessage(t, c.h.ID(), "thanks")
}
