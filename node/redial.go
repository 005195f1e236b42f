package node

import (
	"context"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Getting a direct connection back.
//
// GossipSub talks to a peer only over a connection that is not limited, so a
// peer we reach only through a relay is out of every room (direct messages
// and files do use relayed connections). Hole punching (DCUtR) runs once,
// when a relayed connection opens, started by the side it opened to. When
// the direct connection it made dies later while the relayed one survives
// (a NAT router cut off the internet for about half a minute: the direct
// connection's keepalive gives up, the relay's happens not to; RELIABILITY
// F3, node/natlab TestF3PartitionThenHeal), no relayed connection opens,
// nothing punches again, and the peer stayed out of the room for good:
// nothing it wrote reached us, nor ours it.
//
// So when a peer we had a direct connection to is left with limited ones
// only, the node tries to get a direct one back, after redialFirst, then
// twice as long each time, redialAttempts times, while the peer stays so:
//
//   - it dials the peer's direct addresses (WithForceDirectDial: relayed
//     ones are left out and dial back-off does not apply), which works when
//     the peer has a public address;
//   - failing that, one of the two (the one whose peer ID sorts first, so
//     that they do not both) closes its relayed connections to the other
//     and dials it through the relay again: the other side sees a relayed
//     connection open and hole-punches, as when they first met. It leaves
//     a relayed connection alone while a file transfer runs on it (the
//     transfer would pause); the next attempt looks again.
const (
	redialFirst    = time.Second
	redialAttempts = 7 // 1 + 2 + 4 + 8 + 16 + 32 + 64 s: two minutes
	redialTimeout  = 10 * time.Second
)

// redialer watches connectedness changes and gets direct connections back.
// Its goroutines belong to the node's WaitGroup and end with its context.
type redialer struct {
	n       *Node
	mu      sync.Mutex
	direct  map[peer.ID]bool // had a direct connection since it last disconnected
	running map[peer.ID]bool // a redial runs
}

func newRedialer(n *Node) *redialer {
	return &redialer{n: n, direct: map[peer.ID]bool{}, running: map[peer.ID]bool{}}
}

// changed takes a connectedness change of p (from the host watcher, which
// is one of the node's goroutines).
func (r *redialer) changed(p peer.ID, c network.Connectedness) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch c {
	case network.Connected:
		r.direct[p] = true
	case network.Limited:
		if r.direct[p] && !r.running[p] {
			r.running[p] = true
			r.n.wg.Go(func() { r.redial(p) })
		}
	default:
		delete(r.direct, p)
	}
}

// redial tries, with back-off, until a direct connection to p is back or
// p is no longer connected through limited connections only.
func (r *redialer) redial(p peer.ID) {
	defer func() {
		r.mu.Lock()
		delete(r.running, p)
		r.mu.Unlock()
	}()
	n := r.n
	wait := redialFirst
	for i := range redialAttempts {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
		if n.host.Network().Connectedness(p) == network.Connected {
			n.log.Info("direct connection back", "peer", p, "attempt", i)
			return
		}
		if n.host.Network().Connectedness(p) != network.Limited {
			return
		}
		how, err := r.attempt(p)
		if err == nil && n.host.Network().Connectedness(p) == network.Connected {
			n.log.Info("direct connection back", "peer", p, "attempt", i+1, "how", how)
			return
		}
		n.log.Debug("no direct connection yet", "peer", p, "attempt", i+1, "how", how, "err", err)
	}
	n.log.Info("no direct connection back; relayed only (rooms do not reach this peer over a relay)",
		"peer", p, "attempts", redialAttempts)
}

// attempt makes one try for a direct connection to p, and says which.
func (r *redialer) attempt(p peer.ID) (string, error) {
	n := r.n
	ctx, cancel := context.WithTimeout(n.ctx, redialTimeout)
	defer cancel()
	if err := n.host.Connect(network.WithForceDirectDial(ctx, "direct connection lost"), peer.AddrInfo{ID: p}); err == nil {
		return "dialled directly", nil
	}
	if n.host.ID() > p {
		return "waiting for the peer to open a relayed connection", nil
	}
	conns := n.host.Network().ConnsToPeer(p)
	for _, c := range conns {
		if !c.Stat().Limited {
			return "", nil // a direct connection came meanwhile
		}
		for _, s := range c.GetStreams() {
			if s.Protocol() == protocols.FilesProtocol {
				return "a transfer runs on the relayed connection", nil
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
	err := n.host.Connect(network.WithAllowLimitedConn(ctx, "hole punch again"), peer.AddrInfo{ID: p})
	return "relayed connection opened again for the peer to hole-punch", err
}
