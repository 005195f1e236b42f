package node

import (
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Why the node's GossipSub router dropped a room message, as
// kith_room_messages_dropped_total labels them. Each is a message lost
// live, which only history brings back (a later message of its author
// shows the gap).
const (
	dropValidationQueue = "validation_queue_full" // more arrived than the validator keeps up with (1024 queued)
	dropThrottled       = "validation_throttled"  // more validations at once than pubsub allows
	dropReaderSlow      = "reader_too_slow"       // the room's reader fell 1024 messages behind (storing them)
)

// roomDrops counts what the node's router drops (a pubsub RawTracer): the
// room messages it lost, by reason, and the RPCs it dropped for a peer
// whose outbound queue was full (what that peer then lost).
type roomDrops struct {
	messages *prometheus.CounterVec
	rpcs     prometheus.Counter
}

func newRoomDrops(reg prometheus.Registerer) (*roomDrops, error) {
	d := &roomDrops{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_room_messages_dropped_total",
			Help: "Room messages this node's GossipSub router dropped before storing them, by reason (history repairs them).",
		}, []string{"reason"}),
		rpcs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kith_room_rpcs_dropped_total",
			Help: "GossipSub RPCs (messages, gossip) this node dropped for a peer whose outbound queue was full.",
		}),
	}
	for _, r := range []string{dropValidationQueue, dropThrottled, dropReaderSlow} {
		d.messages.WithLabelValues(r) // every reason shows, at 0
	}
	for _, c := range []prometheus.Collector{d.messages, d.rpcs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: room metrics: %w", err)
		}
	}
	return d, nil
}

var _ pubsub.RawTracer = (*roomDrops)(nil)

func (d *roomDrops) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		d.messages.WithLabelValues(dropValidationQueue).Inc()
	case pubsub.RejectValidationThrottled:
		d.messages.WithLabelValues(dropThrottled).Inc()
	}
}

func (d *roomDrops) UndeliverableMessage(*pubsub.Message) {
	d.messages.WithLabelValues(dropReaderSlow).Inc()
}

func (d *roomDrops) DropRPC(*pubsub.RPC, peer.ID) { d.rpcs.Inc() }

func (*roomDrops) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*roomDrops) OnClosedOutboundStream(peer.ID)           {}
func (*roomDrops) Join(string)                              {}
func (*roomDrops) Leave(string)                             {}
func (*roomDrops) Graft(peer.ID, string)                    {}
func (*roomDrops) Prune(peer.ID, string)                    {}
func (*roomDrops) ValidateMessage(*pubsub.Message)          {}
func (*roomDrops) DeliverMessage(*pubsub.Message)           {}
func (*roomDrops) DuplicateMessage(*pubsub.Message)         {}
func (*roomDrops) ThrottlePeer(peer.ID)                     {}
func (*roomDrops) RecvRPC(*pubsub.RPC)                      {}
func (*roomDrops) SendRPC(*pubsub.RPC, peer.ID)             {}
