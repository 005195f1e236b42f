package node

import (
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// The keeper reserves again after half the lifetime the relay stated, by
// the local clock, when that is plausible for a kith relay, else after half
// of a kith relay's lifetime: a relay's stated expiry is an absolute time
// on its clock, so a skewed clock makes it look far off or past.
func TestRefreshAfter(t *testing.T) {
	const ttl = time.Hour
	for _, c := range []struct {
		name   string
		stated time.Duration // stated expiry minus the local time at receipt
		want   time.Duration
	}{
		{"clocks agree", time.Hour, 30 * time.Minute},
		{"relay 20 min behind", 40 * time.Minute, 20 * time.Minute},
		{"relay 55 min behind (too short to trust)", 5 * time.Minute, 30 * time.Minute},
		{"relay 1 h behind: expiry now", 0, 30 * time.Minute},
		{"relay 1 day behind: expiry in the past", -23 * time.Hour, 30 * time.Minute},
		{"relay 1 h ahead", 2 * time.Hour, 30 * time.Minute},
		{"relay 1 day ahead", 25 * time.Hour, 30 * time.Minute},
	} {
		if got := refreshAfter(c.stated, ttl); got != c.want {
			t.Errorf("%s: refreshAfter(%v) = %v, want %v", c.name, c.stated, got, c.want)
		}
	}
}

// The keeper's reservation and the addresses it advertises: held while
// the node is private and its connection to the relay is open, not added
// where AutoRelay already advertises the relay, and forgotten when the
// relay stops relaying or the connection closes.
func TestRelayKeeperHoldsAndForgets(t *testing.T) {
	relayHost := loopbackHost(t)
	svc, err := relayv2.New(relayHost)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	client := loopbackHost(t)
	info := peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}
	k := newRelayKeeper([]peer.AddrInfo{info}, time.Hour, time.Now, slog.New(slog.DiscardHandler))
	k.h = client
	via := func(addrs []ma.Multiaddr) int {
		n := 0
		for _, a := range addrs {
			if id, ok := relayOf(a); ok && id == relayHost.ID() {
				n++
			}
		}
		return n
	}

	k.round(t.Context()) // not private: nothing
	if got := via(k.addrs(nil)); got != 0 || client.Network().Connectedness(relayHost.ID()) == network.Connected {
		t.Fatalf("a public node reserved (%d relay addresses, connected %v)", got,
			client.Network().Connectedness(relayHost.ID()))
	}
	k.mu.Lock()
	k.private = true
	k.mu.Unlock()
	k.round(t.Context()) // connects and reserves
	if got := via(k.addrs(nil)); got == 0 {
		t.Fatal("no relay address after reserving")
	}
	k.mu.Lock()
	kr := k.held[relayHost.ID()]
	k.mu.Unlock()
	// Half the lifetime stated: an hour less the part of a second the
	// relay's whole-second expiry drops.
	if kr == nil || kr.refresh <= 30*time.Minute-time.Second || kr.refresh > 30*time.Minute {
		t.Fatalf("held %+v, want a reservation renewed after 30 min", kr)
	}
	autorelays := ma.StringCast("/ip4/7.0.0.1/tcp/4011/p2p/" + relayHost.ID().String() + "/p2p-circuit")
	if got := k.addrs([]ma.Multiaddr{autorelays}); len(got) != 1 {
		t.Fatalf("addresses %v, want AutoRelay's alone", got)
	}

	// The relay stops relaying: the next renewal fails, and the
	// reservation is gone though the connection stays open.
	svc.Close()
	if !waitUntil(10*time.Second, func() bool { return !speaksHop(client, relayHost.ID()) }) {
		t.Fatal("the client never learnt the relay stopped relaying")
	}
	k.mu.Lock()
	k.held[relayHost.ID()].granted = time.Now().Add(-time.Hour) // due
	k.mu.Unlock()
	k.round(t.Context())
	if got := via(k.addrs(nil)); got != 0 {
		t.Fatalf("%d addresses through a relay that stopped relaying", got)
	}

	// A relay again: reserved after the retry pause; the connection closes:
	// gone at once.
	svc2, err := relayv2.New(relayHost)
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Close()
	if !waitUntil(10*time.Second, func() bool { return speaksHop(client, relayHost.ID()) }) {
		t.Fatal("the client never learnt the relay relays again")
	}
	k.round(t.Context())
	if got := via(k.addrs(nil)); got != 0 {
		t.Fatal("reserved again before the retry pause")
	}
	k.mu.Lock()
	clear(k.failed)
	k.mu.Unlock()
	k.round(t.Context())
	if got := via(k.addrs(nil)); got == 0 {
		t.Fatal("no relay address after reserving again")
	}
	client.Network().ClosePeer(relayHost.ID())
	if got := via(k.addrs(nil)); got != 0 {
		t.Fatalf("%d addresses through a relay we are no longer connected to", got)
	}
}
