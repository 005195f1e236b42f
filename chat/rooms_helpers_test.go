package chat_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// roomNode is a host with a pubsub router, a room service and its store.
type roomNode struct {
	h       host.Host
	ps      *pubsub.PubSub
	svc     *chat.RoomService
	store   *memRoomStore
	events  chan chat.RoomEvent
	rejects chan rejected // what pubsub rejected or ignored, with why
}

type rejected struct {
	from, author peer.ID
	reason       string
}

func newRoomNode(t testing.TB, cfg chat.RoomConfig, opts ...pubsub.Option) *roomNode {
	t.Helper()
	n := &roomNode{h: newHost(t, nil), store: newMemRoomStore(),
		events: make(chan chat.RoomEvent, 1<<14), rejects: make(chan rejected, 1<<14)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := chat.NewPubSub(ctx, n.h, append(opts, pubsub.WithRawTracer(rejectTracer(n.rejects)))...)
	if err != nil {
		t.Fatal(err)
	}
	n.ps = ps
	n.svc, err = chat.NewRooms(n.h, ps, n.store, cfg, chat.WithRoomEvents(func(e chat.RoomEvent) {
		n.events <- e
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.svc.Close() })
	return n
}

// connect connects a to b.
func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// join joins room on n (nil secret: open).
func (n *roomNode) join(t testing.TB, room string, secret []byte) chat.Room {
	t.Helper()
	r, err := n.svc.Join(t.Context(), room, secret)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitPeers waits, on topic events, until every one of peers has joined
// n's topic of room.
func (n *roomNode) waitPeers(t testing.TB, room string, peers ...peer.ID) {
	t.Helper()
	topic, err := n.svc.Topic(room)
	if err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, topic, peers...)
}

func waitTopicPeers(t testing.TB, topic *pubsub.Topic, peers ...peer.ID) {
	t.Helper()
	ev, err := topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Cancel()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	for {
		have := topic.ListPeers()
		if !slices.ContainsFunc(peers, func(p peer.ID) bool { return !slices.Contains(have, p) }) {
			return
		}
		if _, err := ev.NextPeerEvent(ctx); err != nil {
			t.Fatalf("peers %v did not all join %s: %v", peers, topic, err)
		}
	}
}

// nextMessage returns the next message event of n, skipping gap events.
func (n *roomNode) nextMessage(t testing.TB) chat.RoomMessage {
	t.Helper()
	for {
		select {
		case e := <-n.events:
			if e.Message != nil {
				return *e.Message
			}
		case <-time.After(waitBound):
			t.Fatal("no room message")
		}
	}
}

// waitReject waits until pubsub on n rejects or ignores a message for a
// reason f accepts.
func (n *roomNode) waitReject(t testing.TB, f func(rejected) bool) rejected {
	t.Helper()
	for {
		select {
		case r := <-n.rejects:
			if f(r) {
				return r
			}
		case <-time.After(waitBound):
			t.Fatal("no such rejection")
		}
	}
}

// rejectTracer reports every message pubsub rejects or ignores.
type rejectTracer chan rejected

func (c rejectTracer) RejectMessage(m *pubsub.Message, reason string) {
	select {
	case c <- rejected{from: m.ReceivedFrom, author: m.GetFrom(), reason: reason}:
	default:
	}
}
func (rejectTracer) AddPeer(peer.ID, protocol.ID)             {}
func (rejectTracer) RemovePeer(peer.ID)                       {}
func (rejectTracer) Join(string)                              {}
func (rejectTracer) Leave(string)                             {}
func (rejectTracer) Graft(peer.ID, string)                    {}
func (rejectTracer) Prune(peer.ID, string)                    {}
func (rejectTracer) ValidateMessage(*pubsub.Message)          {}
func (rejectTracer) DeliverMessage(*pubsub.Message)           {}
func (rejectTracer) DuplicateMessage(*pubsub.Message)         {}
func (rejectTracer) ThrottlePeer(peer.ID)                     {}
func (rejectTracer) RecvRPC(*pubsub.RPC)                      {}
func (rejectTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (rejectTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (rejectTracer) UndeliverableMessage(*pubsub.Message)     {}
func (rejectTracer) OnNewInboundStream(peer.ID, protocol.ID)  {}
func (rejectTracer) OnClosedInboundStream(peer.ID)            {}
func (rejectTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (rejectTracer) OnClosedOutboundStream(peer.ID)           {}
