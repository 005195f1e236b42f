package node_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// A node that sees 500 peers come and go holds a bounded number of peers
// afterwards: its pruner forgets, PruneAfter after it first found them
// unconnected, every peer it does not keep, whatever kept it before:
//
//   - 400 peers that connected (identify stored their keys, protocols and
//     listen addresses) and left; of them, 100 also have addresses for 24
//     hours, as kad-dht's provider store keeps them for a provider, and 50
//     addresses for good, as a contact's, the contact since removed;
//   - 100 peers never connected whose key the node looked up (the
//     peerstore keeps what Peerstore.PubKey extracts from an ID).
//
// It keeps: its bootstrap node, a contact that left (and its addresses),
// the peers of its DHT routing tables (two kith nodes that connected and
// left: a routing table keeps a peer until the DHT finds it gone), a peer
// that still has a connection, and the sender of an offer waiting for the
// user. The first pass forgets nothing (no peer has been unconnected for
// PruneAfter yet); a peer that comes back between passes is not forgotten.
func TestPruneForgetsDepartedPeers(t *testing.T) {
	b := nodetest.Start(t)
	n := nodetest.Start(t, nodetest.BootstrapFrom(b))
	ctx := t.Context()
	ps := n.Host().Peerstore()

	contact := nodetest.Start(t)
	if _, err := n.AddContact(ctx, "carol", contact.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
	var dhtPeers []peer.ID
	for range 2 {
		d := nodetest.Start(t, nodetest.BootstrapFrom(n))
		dhtPeers = append(dhtPeers, d.ID())
		pollUntil(t, "a kith node in the routing table", func() bool {
			return slices.Contains(n.DHT().LAN.RoutingTable().ListPeers(), d.ID())
		})
		d.Close()
	}
	contact.Close()

	departed := comeAndGo(t, n, 400)
	for i, p := range departed {
		switch {
		case i < 100:
			ps.AddAddrs(p, ps.Addrs(p), 24*time.Hour) // a provider's, in kad-dht's provider store
		case i < 150:
			ps.AddAddrs(p, ps.Addrs(p), peerstore.PermanentAddrTTL) // a contact's, since removed
		}
	}
	for range 100 {
		h := tcpHost(t)
		ps.PubKey(h.ID()) // stored, though it never connected
		departed = append(departed, h.ID())
		h.Close()
	}
	stays := tcpHost(t)
	connectIdentified(t, stays, n)
	offerer := comeAndGo(t, n, 1)[0]
	storeTransfer(t, n, files.Transfer{ID: transferID(t, "ef560000000000000000000000000001"), Peer: offerer,
		Direction: files.In, State: files.StateOffered, ContentID: protocols.Hash{2}})
	backKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	back := visitOnce(t, n, backKey)

	now := time.Now()
	pr, err := n.NewPruner(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	before := len(ps.Peers())
	if forgot, err := n.PrunePeers(pr); err != nil || forgot != 0 {
		t.Fatalf("first pass: forgot %d, %v; want 0: nobody was unconnected for %v yet", forgot, err, node.PruneAfter)
	}
	if !pr.Unconnected(back) {
		t.Fatal("the first pass did not count the departed peers as unconnected")
	}
	visitOnce(t, n, backKey) // it comes back, and leaves again
	pollUntil(t, "the pruner sees the peer come back", func() bool { return !pr.Unconnected(back) })
	now = now.Add(node.PruneAfter)
	forgot, err := n.PrunePeers(pr)
	if err != nil {
		t.Fatal(err)
	}
	after := ps.Peers()
	t.Logf("the node held %d peers after 500 came and went, %d after pruning (forgot %d)", before, len(after), forgot)

	withKeys, withAddrs := ps.PeersWithKeys(), ps.PeersWithAddrs()
	for _, p := range departed {
		protos, _ := ps.GetProtocols(p)
		if slices.Contains(withKeys, p) || slices.Contains(withAddrs, p) || len(protos) > 0 {
			t.Fatalf("departed peer %s still held: key %v, addresses %v, protocols %v",
				p, slices.Contains(withKeys, p), ps.Addrs(p), protos)
		}
	}
	kept := map[peer.ID]string{n.ID(): "itself", b.ID(): "its bootstrap node", contact.ID(): "a contact",
		stays.ID(): "a connected peer", offerer: "the sender of an offer", back: "a peer that came back"}
	for _, p := range n.DHT().LAN.RoutingTable().ListPeers() {
		kept[p] = "a routing-table peer"
	}
	for p, what := range kept {
		if !slices.Contains(after, p) {
			t.Errorf("the pruner forgot %s (%s)", p, what)
		}
	}
	if len(ps.Addrs(contact.ID())) == 0 {
		t.Error("the pruner forgot the contact's addresses")
	}
	for _, p := range after {
		if _, ok := kept[p]; !ok && !slices.Contains(dhtPeers, p) {
			t.Errorf("the node still holds %s, which it does not keep", p)
		}
	}
	if len(after) > len(kept)+len(dhtPeers) {
		t.Errorf("%d peers held after pruning, want at most %d", len(after), len(kept)+len(dhtPeers))
	}
}

// comeAndGo connects k new hosts to n, one after another, each until n
// has identified it, then closes them all and waits until n sees them gone.
func comeAndGo(t *testing.T, n *node.Node, k int) []peer.ID {
	t.Helper()
	ids := make([]peer.ID, k)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range k {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h := tcpHost(t)
			ids[i] = h.ID()
			connectIdentified(t, h, n)
			h.Close()
		})
	}
	wg.Wait()
	pollUntil(t, "the node sees them all gone", func() bool {
		return !slices.ContainsFunc(ids, func(p peer.ID) bool {
			return n.Host().Network().Connectedness(p) == network.Connected
		})
	})
	return ids
}

// visitOnce connects a host with key to n until n has identified it, closes
// it and waits until n sees it gone.
func visitOnce(t *testing.T, n *node.Node, key crypto.PrivKey) peer.ID {
	t.Helper()
	h := tcpHost(t, libp2p.Identity(key))
	connectIdentified(t, h, n)
	h.Close()
	pollUntil(t, "the node sees it gone", func() bool {
		return n.Host().Network().Connectedness(h.ID()) != network.Connected
	})
	return h.ID()
}

// connectIdentified connects h to n and waits until n has identified h (it holds
// h's protocols and listen addresses).
func connectIdentified(t *testing.T, h host.Host, n *node.Node) {
	t.Helper()
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Error(err)
		return
	}
	pollUntil(t, "identify", func() bool {
		protos, _ := n.Host().Peerstore().GetProtocols(h.ID())
		return len(protos) > 0 && len(n.Host().Peerstore().Addrs(h.ID())) > 0
	})
}

// tcpHost is a plain libp2p host listening on loopback TCP.
func tcpHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// pollUntil polls ok until it holds, for at most a minute.
func pollUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval within the deadline
	}
}
