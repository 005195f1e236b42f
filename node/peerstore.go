package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// What the node forgets about peers that left.
//
// go-libp2p forgets little by itself. Its peerstore manager removes a
// departed peer's keys, protocols and metadata a minute after its last
// connection closed, but not its addresses, which stay as long as their
// TTL: 15 minutes for a peer once connected, 24 hours for a provider
// that a DHT server stored a record of (kad-dht's ProviderAddrTTL; kith's
// servers: providerAddrTTL, 6 hours), 10 minutes after each rendezvous
// dial of a room member (renewed at every lookup as long as the member's
// advertisement lasts: 48 hours on kad-dht's defaults, providerValidity,
// 6 hours, on kith's servers), for ever
// for a contact since removed; and a lookup of a peer's key stores one
// (Peerstore.PubKey keeps what it extracts from the ID), connected or not.
// In a room with churn a long-lived node thus kept every peer it ever saw
// (L9 in RELIABILITY.md: 367 held with 20 live after 30 minutes, and
// counting).
//
// So every pruneEvery the node forgets, keys, protocols, metadata,
// latency and addresses (Peerstore.RemovePeer and ClearAddrs), every peer
// that it has found unconnected for pruneAfter, except:
//
//   - its contacts (blocked ones too), whose addresses it keeps for good;
//   - its bootstrap peers and relays (network.bootstrap, network.relays);
//   - the peers of its DHT routing tables: the DHT refreshes their
//     addresses and evicts them itself when they stop answering;
//   - the peers something waits for: queued direct messages, transfers
//     offered, active or paused.
//
// A DHT server therefore answers a lookup of a room's members with the
// IDs, without addresses, of members that left more than pruneAfter ago
// (their advertisements outlive them by up to providerValidity); the rooms'
// rendezvous does not dial a member found without an address (package
// chat), rather than ask the DHT for each of them at every lookup.
const (
	pruneEvery = time.Minute
	// pruneAfter is longer than a DHT query or a rendezvous dial (which
	// add a peer's addresses just before dialling it) and than
	// go-libp2p's own minute of grace, so that the pruner never takes the
	// addresses of a peer being dialled. A peer is forgotten pruneAfter
	// to pruneAfter + 2 pruneEvery after it was last connected.
	pruneAfter = 2 * time.Minute
)

// pruner remembers since when each peer of the peerstore is unconnected:
// since the first pass that found it so after its last connection.
type pruner struct {
	now   func() time.Time
	fixed map[peer.ID]bool // the bootstrap peers and relays

	mu    sync.Mutex
	since map[peer.ID]time.Time
}

func newPruner(cfg Config, now func() time.Time) *pruner {
	p := &pruner{now: now, fixed: map[peer.ID]bool{}, since: map[peer.ID]time.Time{}}
	for _, field := range [][]string{cfg.Network.Bootstrap, cfg.Network.Relays} {
		ais, _ := parsePeerAddrs("", field) // validated by New
		for _, ai := range ais {
			p.fixed[ai.ID] = true
		}
	}
	return p
}

// startPruner starts p's watch of connections and, with every, its passes
// every that often; both end when the node closes.
func (n *Node) startPruner(p *pruner, every time.Duration) error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.Name("kith-pruner"))
	if err != nil {
		return fmt.Errorf("node: subscribe to connections: %w", err)
	}
	n.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-n.ctx.Done():
				return
			case e := <-sub.Out():
				if ev := e.(event.EvtPeerConnectednessChanged); ev.Connectedness == network.Connected || ev.Connectedness == network.Limited {
					p.mu.Lock()
					delete(p.since, ev.Peer) // a peer that comes back starts afresh
					p.mu.Unlock()
				}
			}
		}
	})
	if every > 0 {
		n.wg.Go(func() { n.pruneLoop(p, every) })
	}
	return nil
}

// pruneLoop prunes the peerstore every interval until the node closes.
func (n *Node) pruneLoop(p *pruner, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := n.prunePeers(p); err != nil && n.ctx.Err() == nil {
			n.log.Warn("prune peerstore", "err", err)
		}
	}
}

// prunePeers forgets the peers p has found unconnected for pruneAfter
// and that the node does not keep; it returns how many it forgot.
func (n *Node) prunePeers(p *pruner) (int, error) {
	keep, err := n.keptPeers(n.ctx)
	if err != nil {
		return 0, err
	}
	for id := range p.fixed {
		keep[id] = true
	}
	ps := n.host.Peerstore()
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	all := ps.Peers()
	present := make(map[peer.ID]bool, len(all))
	forgot := 0
	for _, id := range all {
		present[id] = true
		if id == n.host.ID() || keep[id] || connected(n.host.Network(), id) {
			delete(p.since, id)
			continue
		}
		since, ok := p.since[id]
		if !ok {
			p.since[id] = now
			continue
		}
		if now.Sub(since) < pruneAfter {
			continue
		}
		ps.RemovePeer(id)
		ps.ClearAddrs(id)
		delete(p.since, id)
		forgot++
	}
	for id := range p.since {
		if !present[id] {
			delete(p.since, id) // gone by itself (its addresses expired)
		}
	}
	if forgot > 0 {
		n.log.Debug("pruned peerstore", "forgot", forgot, "held", len(all)-forgot)
	}
	return forgot, nil
}

// connected says whether there is a connection (direct or relayed) to p.
func connected(nw network.Network, p peer.ID) bool {
	c := nw.Connectedness(p)
	return c == network.Connected || c == network.Limited
}

// keptPeers is the set of peers the pruner never forgets (see above) but
// the bootstrap peers and relays, which the pruner holds.
func (n *Node) keptPeers(ctx context.Context) (map[peer.ID]bool, error) {
	keep := map[peer.ID]bool{}
	cs, err := n.store.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		keep[c.PeerID] = true
	}
	if n.dht != nil {
		for _, id := range n.dht.WAN.RoutingTable().ListPeers() {
			keep[id] = true
		}
		for _, id := range n.dht.LAN.RoutingTable().ListPeers() {
			keep[id] = true
		}
	}
	queued, err := n.store.Outbox(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, m := range queued {
		keep[m.Peer] = true
	}
	ts, err := n.store.Transfers(ctx, files.Filter{States: []files.State{files.StateOffered, files.StateActive, files.StatePaused}})
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		keep[t.Peer] = true
	}
	return keep, nil
}
