package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Pruner is the node's peerstore pruner, for the external tests.
type Pruner = pruner

// PruneAfter and PruneEvery expose pruneAfter and pruneEvery to the
// external tests.
const (
	PruneAfter = pruneAfter
	PruneEvery = pruneEvery
)

// NewPruner returns a pruner of n that reads the time from now and makes
// no pass by itself (PrunePeers does).
func (n *Node) NewPruner(now func() time.Time) (*Pruner, error) {
	p := newPruner(n.cfg, now)
	return p, n.startPruner(p, 0)
}

// Unconnected says whether p counts id as unconnected since a pass.
func (p *Pruner) Unconnected(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.since[id]
	return ok
}

// PrunePeers runs one pass of p over n's peerstore (the node runs one a
// minute) and returns how many peers it forgot.
func (n *Node) PrunePeers(p *Pruner) (int, error) { return n.prunePeers(p) }
