package node

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Path values: how a connection reaches a peer.
const (
	PathDirect  = "direct"
	PathRelayed = "relayed"
)

// Identity is what `kith id` prints.
type Identity struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	Ticket string   `json:"ticket"`
}

// Status is what `kith status` prints.
type Status struct {
	PeerID       string       `json:"peer_id"`
	Reachability string       `json:"reachability"`
	Addrs        []string     `json:"addrs"`
	Relays       []string     `json:"relays"`
	Peers        []PeerStatus `json:"peers"`
	DHTPeers     int          `json:"dht_peers"`
	// Bootstrap is how the node stands with its bootstrap peers: connected
	// to the DHT, or retrying with back-off (omitted without bootstrap
	// peers).
	Bootstrap *BootstrapStatus `json:"bootstrap,omitempty"`
	// Relaying is set on a relay (kith relay): whether the relay service is
	// running, which go-libp2p does only while it believes it is public.
	Relaying *bool `json:"relaying,omitempty"`
}

// PeerStatus is one connected peer in Status.
type PeerStatus struct {
	PeerID string  `json:"peer_id"`
	Name   string  `json:"name"`
	Path   string  `json:"path"`
	Relay  string  `json:"relay,omitempty"`
	Addr   string  `json:"addr"`
	RTTMs  float64 `json:"rtt_ms"`
}

// Identity returns the node's peer ID, addresses and ticket.
func (n *Node) Identity() Identity {
	addrs := n.host.Addrs()
	return Identity{
		PeerID: n.host.ID().String(),
		Addrs:  strs(addrs),
		Ticket: makeTicket(n.host.ID(), addrs),
	}
}

// makeTicket encodes a ticket for p with as many of addrs, best first, as
// fit the ticket's limits.
func makeTicket(p peer.ID, addrs []ma.Multiaddr) string {
	return encodeTicket(protocols.Ticket{Peer: p}, ticketAddrs(addrs))
}

// encodeTicket encodes t with as many of addrs (best first) as fit the
// ticket's limits.
func encodeTicket(t protocols.Ticket, addrs []ma.Multiaddr) string {
	for k := len(addrs); ; k-- {
		t.Addrs = addrs[:k]
		s := t.String()
		if _, err := protocols.ParseTicket(s); err == nil || k == 0 {
			return s
		}
	}
}

// fewTicketAddrs picks the addresses of a file ticket, which also carries a
// content ID and a secret and should stay short enough to paste: a few of
// each rank (public, private, relayed, loopback).
func fewTicketAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	const perKind = 3
	var out []ma.Multiaddr
	seen := map[int]int{}
	for _, a := range rankAddrs(addrs) {
		if k := addrRank(a); seen[k] < perKind {
			seen[k]++
			out = append(out, a)
		}
	}
	return out
}

// ticketAddrs picks at most protocols.MaxTicketAddrs addresses, the most
// widely reachable first: public, then private, then relayed, then loopback.
func ticketAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := rankAddrs(addrs)
	return out[:min(len(out), protocols.MaxTicketAddrs)]
}

// rankAddrs sorts a copy of addrs by addrRank, keeping the order within a
// rank.
func rankAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(a, b ma.Multiaddr) int { return cmp.Compare(addrRank(a), addrRank(b)) })
	return out
}

// addrRank orders addresses by how widely they reach: public, private,
// relayed, loopback.
func addrRank(a ma.Multiaddr) int {
	switch {
	case isCircuit(a):
		return 2
	case manet.IsPublicAddr(a):
		return 0
	case manet.IsIPLoopback(a):
		return 3
	default:
		return 1
	}
}

// Status reports reachability, addresses, relay reservations, connected
// peers with their path and RTT, and the DHT routing table size.
func (n *Node) Status() Status {
	addrs := n.host.Addrs()
	st := Status{
		PeerID:       n.host.ID().String(),
		Reachability: reachabilityName(n.Reachability()),
		Addrs:        strs(addrs),
		Relays:       []string{},
		Peers:        []PeerStatus{},
		DHTPeers:     dhtPeers(n.dht),
	}
	if n.boot != nil {
		st.Bootstrap = n.boot.status()
	}
	for _, a := range addrs {
		if relay, ok := relayOf(a); ok && !slices.Contains(st.Relays, relay.String()) {
			st.Relays = append(st.Relays, relay.String())
		}
	}
	for _, p := range n.host.Network().Peers() {
		if ps, ok := n.peerStatus(p); ok {
			ps.Name = n.nameOf(n.ctx, p)
			st.Peers = append(st.Peers, ps)
		}
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return strings.Compare(a.PeerID, b.PeerID) })
	if n.cfg.Relay.Enabled {
		on := n.relaying()
		st.Relaying = &on
	}
	return st
}

// relaying reports whether the circuit relay service is serving.
func (n *Node) relaying() bool {
	return slices.Contains(n.host.Mux().Protocols(), relayHopProtocol)
}

func (n *Node) peerStatus(p peer.ID) (PeerStatus, bool) {
	c := bestConn(n.host.Network().ConnsToPeer(p))
	if c == nil {
		return PeerStatus{}, false
	}
	path, relay := connPath(c)
	return PeerStatus{
		PeerID: p.String(),
		Path:   path,
		Relay:  relay,
		Addr:   c.RemoteMultiaddr().String(),
		RTTMs:  ms(n.host.Peerstore().LatencyEWMA(p)),
	}, true
}

// bestConn prefers a direct connection to a relayed one, as new streams do.
func bestConn(conns []network.Conn) network.Conn {
	var best network.Conn
	for _, c := range conns {
		if best == nil || (isCircuit(best.RemoteMultiaddr()) && !isCircuit(c.RemoteMultiaddr())) {
			best = c
		}
	}
	return best
}

// connPath says whether c is direct or relayed, and via which relay.
func connPath(c network.Conn) (path, relay string) {
	if r, ok := relayOf(c.RemoteMultiaddr()); ok {
		return PathRelayed, r.String()
	}
	if c.Stat().Limited {
		return PathRelayed, ""
	}
	return PathDirect, ""
}

// relayOf returns the relay's peer ID in a /p2p/RELAY/p2p-circuit address.
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	if !isCircuit(a) {
		return "", false
	}
	before, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
	_, last := ma.SplitLast(before)
	if last == nil || last.Code() != ma.P_P2P {
		return "", false
	}
	id, err := peer.Decode(last.Value())
	return id, err == nil
}

// Reachability is what AutoNAT last said about this node.
func (n *Node) Reachability() network.Reachability {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reachability
}

// watch turns host events into node events until the node stops.
func (n *Node) watch(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			n.handleHostEvent(e)
		}
	}
}

func (n *Node) handleHostEvent(e any) {
	switch e := e.(type) {
	case event.EvtPeerConnectednessChanged:
		n.redial.changed(e.Peer, e.Connectedness)
		ev := Event{Type: EventPeerDisconnected, PeerID: e.Peer.String()}
		if e.Connectedness == network.Connected || e.Connectedness == network.Limited {
			n.kickFiles(e.Peer)
			ev.Type = EventPeerConnected
			if c := bestConn(n.host.Network().ConnsToPeer(e.Peer)); c != nil {
				ev.Path, _ = connPath(c)
				ev.Addr = c.RemoteMultiaddr().String()
			}
		}
		n.events.Publish(ev)
	case event.EvtLocalReachabilityChanged:
		n.mu.Lock()
		n.reachability = e.Reachability
		n.mu.Unlock()
		n.log.Info("reachability changed", "reachability", reachabilityName(e.Reachability))
		n.events.Publish(Event{Type: EventReachabilityChanged, Reachability: reachabilityName(e.Reachability)})
	case event.EvtPeerIdentificationCompleted:
		n.learnContactAddrs(e.Peer, e.ListenAddrs)
	case event.EvtLocalAddressesUpdated:
		n.events.Publish(Event{Type: EventAddrsChanged, Addrs: strs(n.host.Addrs())})
	}
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	default:
		return "unknown"
	}
}

func strs(addrs []ma.Multiaddr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
