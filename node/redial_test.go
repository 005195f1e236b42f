package node_test

import (
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// Two peers connected directly and through a relay: when the direct
// connection dies and the relayed one survives (as a NAT router cut off for
// half a minute left them in node/natlab TestF3PartitionThenHeal), the node
// dials directly again by itself. Rooms need it: GossipSub does not use
// relayed connections, and hole punching runs only when one opens.
func TestDirectConnectionComesBack(t *testing.T) {
	client := func(cfg *node.Config) { cfg.DHT.Mode = "client" }
	ana, ben := nodetest.Start(t, client), nodetest.Start(t, client)
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Allow = []string{ana.ID().String(), ben.ID().String()}
	})
	if _, err := circuitclient.Reserve(t.Context(), ben.Host(), relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	ah := ana.Host()
	if err := ah.Connect(network.WithAllowLimitedConn(t.Context(), "test"), circuitTo(r, ben.ID())); err != nil {
		t.Fatalf("relayed connection: %v", err)
	}
	direct := peer.AddrInfo{ID: ben.ID(), Addrs: ben.Host().Addrs()}
	if err := ah.Connect(network.WithForceDirectDial(t.Context(), "test"), direct); err != nil {
		t.Fatalf("direct connection: %v", err)
	}
	if c := ah.Network().Connectedness(ben.ID()); c != network.Connected {
		t.Fatalf("ana's connectedness to ben: %v, want connected", c)
	}

	for _, c := range ah.Network().ConnsToPeer(ben.ID()) {
		if !c.Stat().Limited {
			c.Close()
		}
	}
	if c := ah.Network().Connectedness(ben.ID()); c != network.Limited {
		t.Fatalf("after closing the direct connection ana is %v to ben, want limited (the relayed one left)", c)
	}
	start := time.Now()
	for ah.Network().Connectedness(ben.ID()) != network.Connected {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("no direct connection back %v after it died (ana is %v to ben)", time.Since(start), ah.Network().Connectedness(ben.ID()))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	t.Logf("direct connection back %v after it died", time.Since(start).Round(time.Millisecond))
}

// When the direct addresses fail too, the peer whose ID sorts first closes
// the relayed connection and opens it again: the other side sees a relayed
// connection open to it, which is what makes it hole-punch (on the
// internet; in the NAT lab TestF3PartitionThenHeal covers it). Here both
// forget each other's direct addresses, so that only that step is left.
func TestRelayedConnectionOpenedAgainForHolePunching(t *testing.T) {
	client := func(cfg *node.Config) { cfg.DHT.Mode = "client" }
	lo, hi := nodetest.Start(t, client), nodetest.Start(t, client)
	if lo.ID() > hi.ID() {
		lo, hi = hi, lo
	}
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Allow = []string{lo.ID().String(), hi.ID().String()}
	})
	for _, n := range []*node.Node{lo, hi} {
		if _, err := circuitclient.Reserve(t.Context(), n.Host(), relayInfo(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lo.Host().Connect(network.WithAllowLimitedConn(t.Context(), "test"), circuitTo(r, hi.ID())); err != nil {
		t.Fatalf("relayed connection: %v", err)
	}
	direct := peer.AddrInfo{ID: hi.ID(), Addrs: hi.Host().Addrs()}
	if err := lo.Host().Connect(network.WithForceDirectDial(t.Context(), "test"), direct); err != nil {
		t.Fatalf("direct connection: %v", err)
	}
	reopened := make(chan struct{}, 1)
	hi.Host().Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == lo.ID() && c.Stat().Direction == network.DirInbound && c.Stat().Limited {
			select {
			case reopened <- struct{}{}:
			default:
			}
		}
	}})
	// Each knows the other only through the relay from now on.
	for _, pair := range [][2]*node.Node{{lo, hi}, {hi, lo}} {
		ps := pair[0].Host().Peerstore()
		ps.ClearAddrs(pair[1].ID())
		ps.AddAddrs(pair[1].ID(), circuitTo(r, pair[1].ID()).Addrs, peerstore.TempAddrTTL)
	}
	for _, c := range lo.Host().Network().ConnsToPeer(hi.ID()) {
		if !c.Stat().Limited {
			c.Close()
		}
	}
	if c := lo.Host().Network().Connectedness(hi.ID()); c != network.Limited {
		t.Fatalf("after closing the direct connection lo is %v to hi, want limited", c)
	}
	start := time.Now()
	select {
	case <-reopened:
		t.Logf("relayed connection opened again %v after the direct one died", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatalf("hi saw no relayed connection open from lo within 15s (lo is %v to hi)", lo.Host().Network().Connectedness(hi.ID()))
	}
}
