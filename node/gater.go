package node

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is the host's connection gater. It refuses every connection to or
// from a blocked peer, both when dialing and once the remote peer's identity
// is proven by the security handshake.
type Gater struct {
	mu      sync.RWMutex
	blocked map[peer.ID]struct{}
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

// NewGater returns a gater that blocks the given peers.
func NewGater(blocked ...peer.ID) *Gater {
	g := &Gater{blocked: make(map[peer.ID]struct{})}
	for _, p := range blocked {
		g.blocked[p] = struct{}{}
	}
	return g
}

// Block refuses p from now on. Existing connections are the caller's to close.
func (g *Gater) Block(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked[p] = struct{}{}
}

// Unblock admits p again.
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.blocked, p)
}

// Blocked reports whether p is refused.
func (g *Gater) Blocked(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.blocked[p]
	return ok
}

// InterceptPeerDial refuses to dial a blocked peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return !g.Blocked(p) }

// InterceptAddrDial refuses to dial any address of a blocked peer.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.Blocked(p) }

// InterceptAccept admits every inbound connection: the peer is not known yet.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a blocked peer once its identity is proven.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.Blocked(p)
}

// InterceptUpgraded admits every upgraded connection: the peer already passed
// InterceptSecured.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
