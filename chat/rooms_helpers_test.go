package chat_test

import (
	"context"
	"maps"
	"slices"
	"sync"
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
	ps      *chat.PubSub
	svc     *chat.RoomService
	store   *memRoomStore
	events  chan chat.RoomEvent
	rejects chan rejected // what pubsub rejected or ignored, with why
	trace   *nodeTracer

	mu    sync.Mutex
	shown []chat.RoomEvent // every event the service reported (N6)
}

// shownEvents returns every event n's service reported so far.
func (n *roomNode) shownEvents() []chat.RoomEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.shown)
}

type rejected struct {
	from, author peer.ID
	reason       string
}

func newRoomNode(t testing.TB, cfg chat.RoomConfig, opts ...pubsub.Option) *roomNode {
	t.Helper()
	return buildRoomNode(t, newHost(t, nil), cfg, opts)
}

// buildRoomNode makes a member on h: an in-memory store, a tracer, kith's
// pubsub with psOpts, and the room service with cfg and roomOpts.
func buildRoomNode(t testing.TB, h host.Host, cfg chat.RoomConfig, psOpts []pubsub.Option, roomOpts ...chat.RoomOption) *roomNode {
	t.Helper()
	return buildRoomNodeOn(t, h, newMemRoomStore(), cfg, psOpts, roomOpts...)
}

// buildRoomNodeOn is buildRoomNode on a store the test holds (a member
// restarted on its store).
func buildRoomNodeOn(t testing.TB, h host.Host, store *memRoomStore, cfg chat.RoomConfig, psOpts []pubsub.Option, roomOpts ...chat.RoomOption) *roomNode {
	t.Helper()
	n := &roomNode{h: h, store: store,
		events: make(chan chat.RoomEvent, 1<<14), rejects: make(chan rejected, 1<<14)}
	n.trace = newNodeTracer(n.rejects)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := chat.NewPubSub(ctx, n.h, append(psOpts, pubsub.WithRawTracer(n.trace))...)
	if err != nil {
		t.Fatal(err)
	}
	n.ps = ps
	roomOpts = append([]chat.RoomOption{chat.WithRoomEvents(func(e chat.RoomEvent) {
		n.mu.Lock()
		n.shown = append(n.shown, e)
		n.mu.Unlock()
		n.events <- e
	})}, roomOpts...)
	if n.svc, err = chat.NewRooms(n.h, ps, n.store, cfg, roomOpts...); err != nil {
		t.Fatal(err)
	}
	trackRoom(t, n)
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
	r, _, err := n.svc.Join(t.Context(), room, secret)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitPeers waits, on pubsub events, until every one of peers is among
// the peers of n's topic of room (Topic.ListPeers).
func (n *roomNode) waitPeers(t testing.TB, room string, peers ...peer.ID) {
	t.Helper()
	topic, err := n.svc.Topic(room)
	if err != nil {
		t.Fatal(err)
	}
	n.trace.waitTopicPeers(t, waitBound, topic, peers...)
}

// waitMesh waits, on pubsub events, until every one of peers is in n's mesh
// of room: n forwards what it receives in the room to each of them. Topic
// peers are not enough for a message to cross a relay: a relay forwards to
// its mesh only, and a peer it grafts later is not offered (IHAVE) what
// came before, since gossip goes to peers outside the mesh.
func (n *roomNode) waitMesh(t testing.TB, room string, peers ...peer.ID) {
	t.Helper()
	topic, err := n.svc.Topic(room)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	for {
		changed, mesh := n.trace.state(topic.String())
		if !slices.ContainsFunc(peers, func(p peer.ID) bool { return !mesh[p] }) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("peers %v did not all join %s's mesh of %s (mesh %v)", peers, n.h.ID(), topic, mesh)
		}
	}
}

// waitTopicPeers waits at most d, on pubsub events, until every one of
// peers is among topic's peers. A topic's peer events alone do not do: a
// peer is listed once it subscribed (the event) and once our pubsub has a
// stream to it, which may come later (after identify) with no topic event.
func (tr *nodeTracer) waitTopicPeers(t testing.TB, d time.Duration, topic *pubsub.Topic, peers ...peer.ID) {
	t.Helper()
	ev, err := topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Cancel()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	joined := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := ev.NextPeerEvent(ctx); err != nil {
				return
			}
			select {
			case joined <- struct{}{}:
			default:
			}
		}
	}()
	for {
		changed, _ := tr.state(topic.String())
		have := topic.ListPeers()
		if !slices.ContainsFunc(peers, func(p peer.ID) bool { return !slices.Contains(have, p) }) {
			return
		}
		select {
		case <-joined:
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("peers %v did not all join %s within %v (have %v)", peers, topic, d, topic.ListPeers())
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

// nodeTracer reports every message pubsub rejects or ignores, keeps the
// node's mesh of each topic, and signals every change of its peers or
// meshes (a new stream to a peer, a peer gone, a graft, a prune).
type nodeTracer struct {
	rejects chan<- rejected
	mu      sync.Mutex
	mesh    map[string]map[peer.ID]bool
	changed chan struct{} // closed, and replaced, on every change
}

func newNodeTracer(rejects chan<- rejected) *nodeTracer {
	return &nodeTracer{rejects: rejects, mesh: map[string]map[peer.ID]bool{}, changed: make(chan struct{})}
}

// state returns a channel closed on the next change, and a copy of the
// mesh of topic.
func (tr *nodeTracer) state(topic string) (<-chan struct{}, map[peer.ID]bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.changed, maps.Clone(tr.mesh[topic])
}

// change applies f under the lock and wakes the waiters.
func (tr *nodeTracer) change(f func()) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	f()
	close(tr.changed)
	tr.changed = make(chan struct{})
}

func (tr *nodeTracer) RejectMessage(m *pubsub.Message, reason string) {
	select {
	case tr.rejects <- rejected{from: m.ReceivedFrom, author: m.GetFrom(), reason: reason}:
	default:
	}
}
func (tr *nodeTracer) Graft(p peer.ID, topic string) {
	tr.change(func() {
		if tr.mesh[topic] == nil {
			tr.mesh[topic] = map[peer.ID]bool{}
		}
		tr.mesh[topic][p] = true
	})
}
func (tr *nodeTracer) Prune(p peer.ID, topic string)            { tr.change(func() { delete(tr.mesh[topic], p) }) }
func (tr *nodeTracer) Leave(topic string)                       { tr.change(func() { delete(tr.mesh, topic) }) }
func (tr *nodeTracer) OnNewOutboundStream(peer.ID, protocol.ID) { tr.change(func() {}) }
func (tr *nodeTracer) OnClosedOutboundStream(p peer.ID)         { tr.RemovePeer(p) }
func (tr *nodeTracer) RemovePeer(p peer.ID) { // the router drops it from its meshes
	tr.change(func() {
		for _, m := range tr.mesh {
			delete(m, p)
		}
	})
}
func (*nodeTracer) AddPeer(peer.ID, protocol.ID)            {}
func (*nodeTracer) Join(string)                             {}
func (*nodeTracer) ValidateMessage(*pubsub.Message)         {}
func (*nodeTracer) DeliverMessage(*pubsub.Message)          {}
func (*nodeTracer) DuplicateMessage(*pubsub.Message)        {}
func (*nodeTracer) ThrottlePeer(peer.ID)                    {}
func (*nodeTracer) RecvRPC(*pubsub.RPC)                     {}
func (*nodeTracer) SendRPC(*pubsub.RPC, peer.ID)            {}
func (*nodeTracer) DropRPC(*pubsub.RPC, peer.ID)            {}
func (*nodeTracer) UndeliverableMessage(*pubsub.Message)    {}
func (*nodeTracer) OnNewInboundStream(peer.ID, protocol.ID) {}
func (*nodeTracer) OnClosedInboundStream(peer.ID)           {}
