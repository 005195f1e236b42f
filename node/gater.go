package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is the host's connection gater. It refuses every connection to or
// from a blocked peer, and to or from a peer whose identity is not an Ed25519
// key (kith makes only Ed25519 identities: see CheckPeerKey), both when
// dialing and once the remote peer's identity is proven by the security
// handshake.
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

// ErrNotEd25519 is returned for a peer ID that is not an Ed25519 identity.
var ErrNotEd25519 = errors.New("not an Ed25519 identity; kith uses Ed25519 only")

// CheckPeerKey accepts a peer ID only when it is an Ed25519 identity: kith
// creates nothing else (LoadIdentity), so an RSA, secp256k1 or ECDSA peer is
// not a kith node, and is refused as a contact, on a relay's allow list and
// by the gater. An Ed25519 peer ID holds its key (identity multihash); an
// RSA one is a hash of its key, and is refused for that alone.
func CheckPeerKey(p peer.ID) error {
	k, err := p.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%s: %w", p, ErrNotEd25519)
	}
	if k.Type() != pb.KeyType_Ed25519 {
		return fmt.Errorf("%s is a %s identity: %w", p, k.Type(), ErrNotEd25519)
	}
	return nil
}

// admits reports whether p may connect: not blocked, and an Ed25519 peer.
func (g *Gater) admits(p peer.ID) bool { return !g.Blocked(p) && CheckPeerKey(p) == nil }

// InterceptPeerDial refuses to dial a blocked or non-Ed25519 peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.admits(p) }

// InterceptAddrDial refuses to dial any address of a blocked or non-Ed25519
// peer.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.admits(p) }

// InterceptAccept admits every inbound connection: the peer is not known yet.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a blocked or non-Ed25519 peer once its identity
// is proven.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.admits(p)
}

// InterceptUpgraded admits every upgraded connection: the peer already passed
// InterceptSecured.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
