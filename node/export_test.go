package node

import (
	"context"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MakeTicket exposes makeTicket to the external tests.
var MakeTicket = makeTicket

// WithBootstrapInterval shortens how often a node checks its DHT connection.
func WithBootstrapInterval(d time.Duration) Option {
	return func(o *options) { o.bootstrapEvery = d }
}

// WithBootstrapBackoff sets the floor and cap of the bootstrap back-off.
func WithBootstrapBackoff(floor, ceiling time.Duration) Option {
	return func(o *options) { o.bootstrapMin, o.bootstrapMax = floor, ceiling }
}

// WithForcedPublic makes a relay on loopback relay from the start, as one
// with --announce does (announcing needs a known port; tests use port 0).
func WithForcedPublic() Option {
	return func(o *options) { o.forcePublic = true }
}

// DHT exposes the node's dual DHT to the external tests.
func (n *Node) DHT() *dual.DHT { return n.dht }

// AuthorizeFiles exposes the file-offer policy to the external tests.
func (n *Node) AuthorizeFiles(p peer.ID) error { return n.authorizeFiles(p) }

// AutoAccept exposes the auto-accept decision to the external tests.
func (n *Node) AutoAccept(p peer.ID) (string, bool) { return n.autoAccept(p) }

// StoreTransfer stores t as if the files service had, for tests of the
// node's side of transfers that need no engine.
func (n *Node) StoreTransfer(ctx context.Context, t files.Transfer) error {
	return n.store.CreateTransfer(ctx, t)
}

// FewTicketAddrs exposes fewTicketAddrs to the external tests.
var FewTicketAddrs = fewTicketAddrs

// RoomPeers lists the peers the node's pubsub router sees in room's topic
// (none when it is not in the room).
func (n *Node) RoomPeers(room string) []peer.ID {
	t, err := n.rooms.Topic(room)
	if err != nil {
		return nil
	}
	return t.ListPeers()
}
