package chat_test

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

// waitHolds waits, on n's events, until n stores want messages in room.
func (n *roomNode) waitHolds(t testing.TB, room string, want int) {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		ms, err := n.svc.Messages(t.Context(), room, chat.RoomFilter{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(ms) > want:
			t.Fatalf("%s holds %d messages, want %d", n.h.ID(), len(ms), want)
		case len(ms) == want:
			return
		}
		select {
		case <-n.events:
		case <-deadline:
			t.Fatalf("%s holds %d messages, want %d", n.h.ID(), len(ms), want)
		}
	}
}

// waitBackfilled waits until n reported want messages of room as
// Backfilled, and fails on a live one.
func (n *roomNode) waitBackfilled(t testing.TB, room string, want int) {
	t.Helper()
	deadline := time.After(waitBound)
	for got := 0; got < want; {
		select {
		case e := <-n.events:
			switch {
			case e.Room != room || e.Message == nil:
			case e.Backfilled:
				got++
			default:
				t.Fatalf("message %s/%d reported live, not backfilled", e.Message.Author, e.Message.Seq)
			}
		case <-deadline:
			t.Fatalf("%s reported %d backfilled messages, want %d", n.h.ID(), got, want)
		}
	}
}

// ids returns the IDs of n's messages in room, in the order n shows them.
func (n *roomNode) ids(t testing.TB, room string) []string {
	t.Helper()
	ms, err := n.svc.Messages(t.Context(), room, chat.RoomFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// signedRaw is a pubsub message signed by key as pubsub's StrictSign signs
// it, encoded: what a history server hands on.
func signedRaw(t testing.TB, key crypto.PrivKey, topic string, payload []byte, seqno uint64) []byte {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	m := &pb.Message{From: []byte(id), Data: payload, Seqno: binary.BigEndian.AppendUint64(nil, seqno), Topic: &topic}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), b...)); err != nil {
		t.Fatal(err)
	}
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// gater refuses every connection with the peers it blocks.
type gater struct {
	mu      sync.Mutex
	blocked []peer.ID
}

func (g *gater) set(ps ...peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked = ps
}

func (g *gater) allow(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !slices.Contains(g.blocked, p)
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allow(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allow(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allow(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
