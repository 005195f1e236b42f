package chat_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
)

// A lookup names a member and no address of it: what a DHT server answers
// for a member that left (its advertisement outlives it by up to 48 hours,
// its addresses do not: kith's node forgets those of peers gone a few
// minutes). The service does not dial it, and so never asks the routing of
// its host (a routed host, as kith's node gives it) to find the peer: a
// lookup per member that left, at every rendezvous lookup, made a room
// with churn spend ever more time in DHT walks (L9). The routing here
// would find the member, which is alive: the cost is that a member known
// by ID only is not met through this lookup (it still dials us, and later
// lookups carry its addresses again). Found with its address, it is
// dialled and met.
func TestRoomRendezvousSkipsMembersWithoutAddress(t *testing.T) {
	nothingLost(t)
	a, b := newHost(t, nil), newHost(t, nil)
	rt := &countingRouting{info: peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}}
	d := &fixedDiscovery{}
	d.set(peer.AddrInfo{ID: b.ID()})
	n := newRdvNode(t, routedhost.Wrap(a, rt), d, newMemRoomStore(), fastRendezvous)
	n.join(t, "lobby", nil)
	waitFor(t, "the member without address skipped twice", func() bool {
		evs, _ := n.log.all()
		return len(slices.DeleteFunc(evs, func(e chat.RendezvousEvent) bool {
			return e.Kind != chat.RendezvousDialled || e.Peer != b.ID() || e.Err == nil
		})) >= 2
	})
	if c := rt.finds.Load(); c != 0 {
		t.Errorf("the routing was asked %d times for a member found without address", c)
	}
	if a.Network().Connectedness(b.ID()) == network.Connected {
		t.Error("connected to a member found without address")
	}

	d.set(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	n.log.waitCount(t, "lobby", dialled, b.ID(), 1)
	if a.Network().Connectedness(b.ID()) != network.Connected {
		t.Error("not connected to the member found with its address")
	}
}

// fixedDiscovery finds what it was set to, and takes every advertisement.
type fixedDiscovery struct {
	mu    sync.Mutex
	found []peer.AddrInfo
}

func (d *fixedDiscovery) set(found ...peer.AddrInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.found = found
}

func (d *fixedDiscovery) Advertise(context.Context, string, ...discovery.Option) (time.Duration, error) {
	return time.Hour, nil
}

func (d *fixedDiscovery) FindPeers(context.Context, string, ...discovery.Option) (<-chan peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := make(chan peer.AddrInfo, len(d.found))
	for _, ai := range d.found {
		ch <- ai
	}
	close(ch)
	return ch, nil
}

// countingRouting finds info, and counts how often it was asked.
type countingRouting struct {
	info  peer.AddrInfo
	finds atomic.Int64
}

func (r *countingRouting) FindPeer(_ context.Context, p peer.ID) (peer.AddrInfo, error) {
	r.finds.Add(1)
	if p != r.info.ID {
		return peer.AddrInfo{}, routing.ErrNotFound
	}
	return r.info, nil
}

// A member found at addresses where nobody listens any more (it left, and
// a DHT server still had its addresses) is dialled there only: the dial
// fails, and the routing of the host (a routed host, as kith's node gives
// it) is not asked to find it. Through the host's Connect, every failed
// dial walked the DHT for a member that had left, at every lookup.
func TestRoomRendezvousDialsFoundAddressesOnly(t *testing.T) {
	nothingLost(t)
	a, gone := newHost(t, nil), newHost(t, nil)
	left := peer.AddrInfo{ID: gone.ID(), Addrs: gone.Addrs()}
	gone.Close()
	rt := &countingRouting{}
	d := &fixedDiscovery{}
	d.set(left)
	n := newRdvNode(t, routedhost.Wrap(a, rt), d, newMemRoomStore(), fastRendezvous)
	n.join(t, "lobby", nil)
	waitFor(t, "two failed dials of the member that left", func() bool {
		evs, _ := n.log.all()
		return len(slices.DeleteFunc(evs, func(e chat.RendezvousEvent) bool {
			return e.Kind != chat.RendezvousDialled || e.Peer != left.ID || e.Err == nil
		})) >= 2
	})
	if c := rt.finds.Load(); c != 0 {
		t.Errorf("the routing was asked %d times for a member whose dial failed", c)
	}
}
