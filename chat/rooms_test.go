package chat_test

import (
	"fmt"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Three members of an open room: every message of each reaches the other
// two once, in its author's seq order, attributed to its signer.
func TestRoomOpenThreeNodes(t *testing.T) {
	nothingLost(t)
	nodes := []*roomNode{newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{})}
	connect(t, nodes[0].h, nodes[1].h)
	connect(t, nodes[1].h, nodes[2].h)
	connect(t, nodes[0].h, nodes[2].h)
	for _, n := range nodes {
		n.join(t, "lobby", nil)
	}
	for i, n := range nodes {
		n.waitPeers(t, "lobby", nodes[(i+1)%3].h.ID(), nodes[(i+2)%3].h.ID())
	}
	const each = 5
	for k := range each {
		for i, n := range nodes {
			m, err := n.svc.Send(t.Context(), "lobby", fmt.Sprintf("%d from %d", k, i))
			if err != nil || m.Seq != uint64(k+1) {
				t.Fatalf("Send: %+v, %v", m, err)
			}
		}
	}
	for i, n := range nodes {
		last := map[peer.ID]uint64{}
		for range 3 * each { // its own and the other two's
			m := n.nextMessage(t)
			if m.Seq != last[m.Author]+1 {
				t.Fatalf("node %d: message %d from %s after %d", i, m.Seq, m.Author, last[m.Author])
			}
			last[m.Author] = m.Seq
			if want := fmt.Sprintf("%d from %d", m.Seq-1, index(nodes, m.Author)); m.Text != want {
				t.Fatalf("node %d: %q attributed to %s, want %q", i, m.Text, m.Author, want)
			}
		}
		msgs, _ := n.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
		if len(msgs) != 3*each {
			t.Errorf("node %d stores %d messages, want %d", i, len(msgs), 3*each)
		}
		for _, m := range msgs { // ours too: history hands every one on
			if len(m.ID) != 32 || len(m.Raw) == 0 {
				t.Errorf("node %d: message %s/%d stored with ID %q and %d raw bytes", i, m.Author, m.Seq, m.ID, len(m.Raw))
			}
		}
		if i > 0 {
			prev, _ := nodes[0].svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
			for k := range min(len(prev), len(msgs)) {
				if prev[k].ID != msgs[k].ID {
					t.Errorf("node %d shows message %d as %s, node 0 as %s", i, k, msgs[k].ID, prev[k].ID)
				}
			}
		}
		if gaps, _ := n.svc.Gaps(t.Context(), "lobby"); len(gaps) != 0 {
			t.Errorf("node %d: gaps %v", i, gaps)
		}
	}
}

func index(nodes []*roomNode, p peer.ID) int {
	for i, n := range nodes {
		if n.h.ID() == p {
			return i
		}
	}
	return -1
}
