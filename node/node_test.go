package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// Two peers that know only a bootstrap node find each other by peer ID
// through the private DHT, connect directly and ping.
func TestPeersFindEachOtherThroughBootstrap(t *testing.T) {
	boot := nodetest.Start(t, nodetest.Relay)
	a := nodetest.Start(t, nodetest.BootstrapFrom(boot))
	b := nodetest.Start(t, nodetest.BootstrapFrom(boot))
	if len(a.Host().Peerstore().Addrs(b.ID())) != 0 {
		t.Fatal("a knows b's addresses before any lookup")
	}
	var got []node.PingResult
	err := a.Ping(t.Context(), b.ID().String(), 3, 0, func(r node.PingResult) { got = append(got, r) })
	if err != nil {
		t.Fatalf("ping through DHT lookup: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3", len(got))
	}
	for i, r := range got {
		if r.Seq != i+1 || r.PeerID != b.ID().String() || r.Path != node.PathDirect || r.RTTMs <= 0 ||
			!strings.HasPrefix(r.Addr, "/ip4/127.0.0.1/") {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	st := a.Status()
	if st.PeerID != a.ID().String() || st.DHTPeers < 1 || len(st.Addrs) == 0 {
		t.Errorf("status: %+v", st)
	}
	i := slices.IndexFunc(st.Peers, func(p node.PeerStatus) bool { return p.PeerID == b.ID().String() })
	if i < 0 || st.Peers[i].Path != node.PathDirect || st.Peers[i].Addr == "" {
		t.Errorf("status does not show b connected directly: %+v", st.Peers)
	}
}

func TestPingByTicket(t *testing.T) {
	a := nodetest.Start(t)
	b := nodetest.Start(t)
	var got []node.PingResult
	err := a.Ping(t.Context(), b.Identity().Ticket, 1, 0, func(r node.PingResult) { got = append(got, r) })
	if err != nil || len(got) != 1 || got[0].PeerID != b.ID().String() {
		t.Fatalf("ping by ticket: %v %+v", err, got)
	}
}

func TestPingErrors(t *testing.T) {
	a := nodetest.Start(t)
	stranger := nodetest.Start(t) // never connected, no bootstrap: not findable
	stranger.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	tests := []struct {
		target string
		want   error
	}{
		{"alice", node.ErrUnknownPeer},
		{"kith1notaticket", protocols.ErrTicket},
		{stranger.ID().String(), node.ErrUnreachable},
	}
	for _, tt := range tests {
		err := a.Ping(ctx, tt.target, 1, 0, func(node.PingResult) {})
		if !errorsIs(err, tt.want) {
			t.Errorf("ping %q: %v, want %v", tt.target, err, tt.want)
		}
	}
}

func TestIdentityTicketRoundTrip(t *testing.T) {
	n := nodetest.Start(t)
	id := n.Identity()
	tk, err := protocols.ParseTicket(id.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Peer != n.ID() || len(tk.Addrs) == 0 || len(tk.Addrs) != len(id.Addrs) {
		t.Fatalf("ticket %+v for identity %+v", tk, id)
	}
}

// The DHT speaks only kith's own protocol IDs, never the public IPFS DHT's.
func TestDHTIsPrivate(t *testing.T) {
	n := nodetest.Start(t, nodetest.Relay)
	protos := n.Host().Mux().Protocols()
	for _, want := range []protocol.ID{"/kith/kad/1.0.0", "/kith/lan/kad/1.0.0"} {
		if !slices.Contains(protos, want) {
			t.Errorf("relay does not serve %s; has %v", want, protos)
		}
	}
	for _, p := range protos {
		if strings.Contains(string(p), "/kad/") && !strings.HasPrefix(string(p), "/kith/") {
			t.Errorf("serves a public DHT protocol %s", p)
		}
	}
}

func TestGaterRefusesBlockedPeer(t *testing.T) {
	a := nodetest.Start(t)
	b := nodetest.Start(t)
	a.Gater().Block(b.ID())
	info := peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}
	// b dials a: a refuses once b's identity is proven.
	if err := b.Host().Connect(t.Context(), info); err == nil {
		// The handshake can complete on b's side before a closes it.
		waitDisconnected(t, a, b.ID())
	}
	if a.Host().Network().Connectedness(b.ID()) == network.Connected {
		t.Fatal("a accepted a blocked peer")
	}
	// a refuses to dial b.
	if err := a.Connect(t.Context(), b.ID()); err == nil {
		t.Fatal("a dialed a blocked peer")
	}
	a.Gater().Unblock(b.ID())
	if err := b.Host().Connect(t.Context(), info); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
}

func waitDisconnected(t *testing.T, n *node.Node, p peer.ID) {
	t.Helper()
	ev, cancel := n.Events().Subscribe()
	defer cancel()
	if n.Host().Network().Connectedness(p) != network.Connected {
		return
	}
	waitEvent(t, ev, func(e node.Event) bool { return e.Type == node.EventPeerDisconnected && e.PeerID == p.String() })
}

// However many addresses a node has, its ticket stays valid, best first.
func TestTicketFitsManyAddresses(t *testing.T) {
	n := nodetest.Start(t)
	var addrs []ma.Multiaddr
	for i := range 40 {
		addrs = append(addrs, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4011", i)))
		addrs = append(addrs, ma.StringCast(fmt.Sprintf(
			"/ip4/203.0.113.%d/tcp/4011/p2p/12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ/p2p-circuit", i)))
	}
	s := node.MakeTicket(n.ID(), addrs)
	tk, err := protocols.ParseTicket(s)
	if err != nil {
		t.Fatalf("ticket with many addresses is invalid: %v", err)
	}
	if len(tk.Addrs) == 0 || len(tk.Addrs) > protocols.MaxTicketAddrs {
		t.Fatalf("ticket carries %d addresses", len(tk.Addrs))
	}
	if !strings.HasPrefix(tk.Addrs[0].String(), "/ip4/10.0.0.") {
		t.Fatalf("private direct addresses should come before relayed ones: %v", tk.Addrs[0])
	}
}

// A node that loses its connection to every DHT peer dials its bootstrap
// peers again by itself.
func TestReconnectsToBootstrapWhenCutOff(t *testing.T) {
	boot := nodetest.Start(t, nodetest.Relay)
	cfg := nodetest.Config(t)
	cfg.Network.Bootstrap = nodetest.P2PAddrs(boot)
	a, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)), node.WithBootstrapInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Host().Network().Connectedness(boot.ID()) != network.Connected {
		t.Fatal("not connected to the bootstrap peer after New")
	}
	cut := time.Now()
	boot.Host().Network().ClosePeer(a.ID())
	// A connection opened after the cut: polled, not awaited as an event,
	// since under load a's redial can land before it has seen the old
	// connection close, and its connectedness then never changes.
	for deadline := time.Now().Add(time.Minute); !slices.ContainsFunc(a.Host().Network().ConnsToPeer(boot.ID()),
		func(c network.Conn) bool { return c.Stat().Opened.After(cut) }); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a did not dial its bootstrap peer again within a minute of being cut off")
		}
	}
}
