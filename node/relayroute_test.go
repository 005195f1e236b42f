package node

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/core/test"
	ma "github.com/multiformats/go-multiaddr"
)

type fakeRouting map[peer.ID]peer.AddrInfo

func (f fakeRouting) FindPeer(_ context.Context, p peer.ID) (peer.AddrInfo, error) {
	if ai, ok := f[p]; ok {
		return ai, nil
	}
	return peer.AddrInfo{}, routing.ErrNotFound
}

// A peer the DHT cannot place is looked for through each of our relays; a
// peer it can is where the DHT says; with no relay, not found stays not
// found.
func TestFindPeerFallsBackToOurRelays(t *testing.T) {
	relay, known, hidden := test.RandPeerIDFatal(t), test.RandPeerIDFatal(t), test.RandPeerIDFatal(t)
	direct := ma.StringCast("/ip4/7.0.0.1/tcp/4011")
	dht := fakeRouting{known: {ID: known, Addrs: []ma.Multiaddr{direct}}}
	relays := []peer.AddrInfo{{ID: relay, Addrs: []ma.Multiaddr{
		ma.StringCast("/ip4/7.0.0.10/tcp/4011"), ma.StringCast("/ip4/7.0.0.10/udp/4011/quic-v1"),
	}}}
	r := viaRelays{dht: dht, relays: relays}
	ctx := context.Background()

	ai, err := r.FindPeer(ctx, hidden)
	if err != nil {
		t.Fatalf("a peer only our relay knows: %v", err)
	}
	want := []string{
		"/ip4/7.0.0.10/tcp/4011/p2p/" + relay.String() + "/p2p-circuit",
		"/ip4/7.0.0.10/udp/4011/quic-v1/p2p/" + relay.String() + "/p2p-circuit",
	}
	if ai.ID != hidden || len(ai.Addrs) != len(want) {
		t.Fatalf("got %v, want %s at %v", ai, hidden, want)
	}
	for i, a := range ai.Addrs {
		if a.String() != want[i] {
			t.Errorf("address %d: %s, want %s", i, a, want[i])
		}
	}
	if ai, err := r.FindPeer(ctx, known); err != nil || len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(direct) {
		t.Errorf("a peer the DHT knows: %v, %v; want its DHT address only", ai, err)
	}
	if ai, err := r.FindPeer(ctx, relay); err == nil {
		t.Errorf("the relay through itself: %v, want not found", ai)
	}
	if ai, err := (viaRelays{dht: dht}).FindPeer(ctx, hidden); err != routing.ErrNotFound {
		t.Errorf("no relay: %v, %v; want routing.ErrNotFound", ai, err)
	}
}

// A daemon dials more than 8 peers through one relay: circuits are not
// counted against the relay's address, while direct connections from one
// address still stop at go-libp2p's 8. (New connections stay paced by
// go-libp2p's rate limiter: a burst of 16, then a few a second.)
func TestRelayedConnsNotCountedPerIP(t *testing.T) {
	rm, err := newResourceManager(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	relay := test.RandPeerIDFatal(t)
	direct, err := openFrom(rm, "203.0.113.7", 1) // our connection to the relay
	defer done(direct)
	if err != nil {
		t.Fatal(err)
	}
	var circuits []network.ConnManagementScope
	defer func() { done(circuits) }()
	circuit := ma.StringCast("/ip4/203.0.113.7/tcp/4011/p2p/" + relay.String() + "/p2p-circuit")
	for i := range 12 {
		s, err := rm.OpenConnection(network.DirOutbound, false, circuit)
		if err != nil {
			t.Fatalf("circuit %d through the relay: %v", i+1, err)
		}
		circuits = append(circuits, s)
	}
	more, err := openFrom(rm, "203.0.113.7", 8)
	defer done(more)
	if err == nil || len(more) != 7 {
		t.Fatalf("%d more direct connections from the relay's address admitted (err %v), want 7 (8 with the first)", len(more), err)
	}
}
