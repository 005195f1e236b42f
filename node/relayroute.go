package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	ma "github.com/multiformats/go-multiaddr"
)

// viaRelays is the node's peer routing: the DHT first and, when the DHT
// finds no address for a peer, a circuit to it through each relay the node
// reserves on (network.relays). Colleagues use the same relay, so a peer
// the DHT cannot place is usually reserved there.
//
// The DHT alone is not enough: a peer behind a symmetric NAT has only
// private and relayed addresses, and kad-dht's WAN lookups leave out every
// peer without a public address that is not a relay's (PublicQueryFilter),
// so FIND_PEER for it ends "routing: not found" even though the relay we
// asked had just answered with its circuit address. The NAT lab's L2 test
// saw 8 of 10 such colleagues never found in 90 s.
type viaRelays struct {
	dht    routedhost.Routing
	relays []peer.AddrInfo
}

func (r viaRelays) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	ai, err := r.dht.FindPeer(ctx, p)
	if err == nil || ctx.Err() != nil {
		return ai, err
	}
	out := peer.AddrInfo{ID: p, Addrs: circuitAddrs(r.relays, p)}
	if len(out.Addrs) == 0 {
		return ai, err
	}
	return out, nil
}

// circuitAddrs are the addresses of p through each relay (not p itself):
// RELAYADDR/p2p/RELAY/p2p-circuit, which the host dials with p's ID.
func circuitAddrs(relays []peer.AddrInfo, p peer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, rl := range relays {
		if rl.ID == p {
			continue
		}
		via, err := ma.NewMultiaddr("/p2p/" + rl.ID.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		for _, a := range rl.Addrs {
			out = append(out, a.Encapsulate(via))
		}
	}
	return out
}

// relayedNotPerIP is the resource manager with one change: a relayed
// connection we dial is not counted against the relay's IP address.
// go-libp2p admits 8 connections per address and counts a circuit as a
// connection from the relay's (the first IP of its address), so a node
// behind a symmetric NAT, whose every peer is reached through the relay,
// could talk to at most 7 of them at once (its own connection to the relay
// is the 8th): the NAT lab's L2 test saw a sender's 8th, 9th and 10th
// transfers wait forever. Each circuit is still a connection in every
// other limit (system, transient, peer) and paced by go-libp2p's rate
// limiter (a burst of 16 new ones); the relay limits circuits itself.
type relayedNotPerIP struct {
	network.ResourceManager
	noIP interface {
		OpenConnectionNoIP(network.Direction, bool, ma.Multiaddr) (network.ConnManagementScope, error)
	}
}

func (r relayedNotPerIP) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	if isCircuit(endpoint) {
		return r.noIP.OpenConnectionNoIP(dir, usefd, endpoint)
	}
	return r.ResourceManager.OpenConnection(dir, usefd, endpoint)
}

// withRelayedNotPerIP wraps rm in relayedNotPerIP when it can open a
// connection without an address (go-libp2p's resource manager can).
func withRelayedNotPerIP(rm network.ResourceManager) network.ResourceManager {
	noIP, ok := rm.(interface {
		OpenConnectionNoIP(network.Direction, bool, ma.Multiaddr) (network.ConnManagementScope, error)
	})
	if !ok {
		return rm
	}
	return relayedNotPerIP{ResourceManager: rm, noIP: noIP}
}
