package chat

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SeenMessagesTTL is how long our pubsub remembers a message ID as seen
// (pubsub's default, 2 minutes). pubsub forgets an expired ID only when it
// sweeps its seen cache, once a minute, so an ID is remembered for 2 to 3
// minutes. A replay after that is caught by the store: a room message is
// kept once per (room, author, seq) (TestHostileRoomReplay).
const SeenMessagesTTL = 2 * time.Minute

// NewPubSub builds the GossipSub router rooms run on, with kith's settings
// (opts come after them and override them, for tests):
//
//   - StrictSign: every message is signed and carries from and seqno; the
//     signer is the author.
//   - Flood publishing: our own messages go to every peer in the topic, not
//     only the mesh, so a small room gets them in one hop. A message relayed
//     by another member goes to that member's mesh only, and gossip (IHAVE)
//     offers it only to peers outside the mesh: a member the relay grafts
//     after relaying it (one that joined at about the same time, before the
//     relay's next heartbeat) never gets it. A later message from the same
//     author shows it as a gap. Scoring plays no part: an honest new peer
//     scores 0, above every RoomScoreThresholds threshold.
//   - Message IDs are SHA-256(from || seqno || data) (RoomMessageID): an ID
//     names exactly one signed message, so a later history exchange can ask
//     for messages by ID and check what it gets; pubsub's default,
//     from || seqno, would let two different payloads signed with one seqno
//     share an ID.
//   - Peer scoring with RoomScoreParams and RoomScoreThresholds; each room's
//     topic gets RoomTopicScoreParams when it is joined. The
//     application-specific score is the room service's penalty for authors
//     that sent us messages over their rate or from too far in the future
//     (see PenaltyWeight).
//   - A heartbeat every 200 ms (RoomGossipSubParams), not every second:
//     until a member's mesh has formed, and whenever its mesh peers are
//     slow, a message reaches it only through gossip (IHAVE, then IWANT),
//     which goes out at heartbeats; a one-second heartbeat made those
//     members wait up to a second.
//   - pubsub's outbound queue (32 RPCs per peer): under a burst a member
//     drops redundant copies for busy mesh peers. A queue of 256 dropped
//     none, but the copies then overflowed the receivers' validation
//     queues instead and BenchmarkRoom50/throughput did not improve (the
//     machine was shared and loaded: not conclusive), so it stays 32.
//   - RPCs of at most protocols.MaxRoomRPC (64 KiB) are read, not
//     pubsub's default 1 MiB: a longer length prefix resets the stream
//     before anything is allocated for it (protocols' Rooms section,
//     TestHostileRoomOversizedRPC). pubsub splits what it sends to fit.
//   - One validation worker and inline validators, so that messages from one
//     peer are validated and delivered in the order they arrived (a room's
//     validator costs microseconds; Ed25519 verification dominates, about
//     20,000 messages per second).
func NewPubSub(ctx context.Context, h host.Host, opts ...pubsub.Option) (*PubSub, error) {
	pen := newPenalties()
	params := RoomScoreParams()
	params.AppSpecificScore, params.AppSpecificWeight = pen.score, 1
	base := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithFloodPublish(true),
		pubsub.WithGossipSubParams(RoomGossipSubParams()),
		pubsub.WithMessageIdFn(RoomMessageID),
		pubsub.WithPeerScore(params, RoomScoreThresholds()),
		pubsub.WithSeenMessagesTTL(SeenMessagesTTL),
		pubsub.WithValidateWorkers(1),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithMaxMessageSize(protocols.MaxRoomRPC),
	}
	ps, err := pubsub.NewGossipSub(ctx, h, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("chat: start gossipsub: %w", err)
	}
	return &PubSub{PubSub: ps, pen: pen}, nil
}

// PubSub is the GossipSub router rooms run on, as NewPubSub makes it: the
// pubsub router, with the penalties its peer score reads and the room
// service writes.
type PubSub struct {
	*pubsub.PubSub
	pen *penalties
}

// RoomGossipSubParams are pubsub's defaults (D 6, D_lo 5, D_hi 12,
// gossip to max(6, 25% of) peers outside the mesh) with a heartbeat every
// 200 ms instead of 1 s, and what counts in heartbeats scaled to keep its
// meaning in time: the message cache still answers IWANT for 5 s (25
// heartbeats) and opportunistic grafting still runs every minute. A
// message ID is still offered in gossip at 3 heartbeats (now within 600
// ms), so gossip sends as many IHAVE entries per message as before; what
// costs more is the heartbeat itself, 5 times as often.
//
// Measured with BenchmarkRoom50Cold (50 members sending as soon as they
// joined; just bench-rooms), 4 runs of 100 messages each, 2 shared cores:
// with 1 s heartbeats, 2 runs had stragglers that got a message only
// through IWANT after a heartbeat's IHAVE, the slowest 792 and 905 ms;
// with 200 ms heartbeats the slowest delivery of any run was 199 ms (some
// still through IWANT, within a heartbeat). Once meshes formed
// (BenchmarkRoom50/latency) no delivery took the gossip path either way.
func RoomGossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	scale := int(time.Second / roomHeartbeat)
	p.HeartbeatInterval = roomHeartbeat
	p.HistoryLength *= scale
	p.OpportunisticGraftTicks *= uint64(scale)
	p.DirectConnectTicks *= uint64(scale)
	return p
}

// roomHeartbeat is the heartbeat interval of RoomGossipSubParams.
const roomHeartbeat = 200 * time.Millisecond

// RoomMessageID is the pubsub message ID of rooms: SHA-256 of from, seqno
// and data, each preceded by its length.
func RoomMessageID(m *pb.Message) string {
	h := sha256.New()
	for _, b := range [][]byte{m.GetFrom(), m.GetSeqno(), m.GetData()} {
		h.Write([]byte{byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))})
		h.Write(b)
	}
	return string(h.Sum(nil))
}

// RoomScoreParams are the peer-score parameters outside topics:
//
//   - no application score (NewPubSub sets the room penalties) and no IP
//     colocation penalty: colleagues behind
//     one office NAT share an address, and would all be penalised;
//   - behaviour penalty (broken promises, GRAFT during back-off): weight
//     -10 over a threshold of 6, forgotten over 10 minutes;
//   - counters decay every second, and a disconnected peer's score is kept
//     for 10 minutes, so reconnecting does not wash it.
func RoomScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:                    map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:             100,
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		AppSpecificWeight:         0,
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		RetainScore:               10 * time.Minute,
	}
}

// RoomTopicScoreParams are the score parameters of every room topic:
//
//   - P1 time in mesh: +1 per minute, up to +10;
//   - P2 first deliveries: +1 each, up to +20, forgotten over 10 minutes;
//   - P3 mesh delivery rate: off. A chat room is quiet for hours and then
//     busy; a rate threshold would punish honest peers of a quiet room;
//   - P4 invalid messages: -100 times the square of their count, forgotten
//     over 10 minutes. The validator rejects only what no honest forwarder
//     sends (see RoomService), so 6 invalid messages (-3600; 5 make -2500,
//     not below it) put a peer on the graylist. Tested: a forger's 4
//     invalid signatures score it about -1600, below the gossip threshold
//     (TestHostileRoomForgedAuthor); a member publishing 500 messages at
//     once is graylisted after its first 80 and pruned from the mesh
//     (TestHostileRoomFlooder).
func RoomTopicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshWeight:                1.0 / 60,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   600,
		FirstMessageDeliveriesWeight:    1,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:       20,
		MeshMessageDeliveriesWeight:     0,
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Minute),
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Minute,
		MeshFailurePenaltyWeight:        0,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Minute),
		InvalidMessageDeliveriesWeight:  -100,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(10 * time.Minute),
	}
}

// RoomScoreThresholds: below -500 no gossip to or from a peer, below -1000
// we do not flood-publish to it, below -2500 everything it sends is
// ignored; peer exchange only from peers above +10 (well connected ones).
func RoomScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -500,
		PublishThreshold:            -1000,
		GraylistThreshold:           -2500,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 2,
	}
}
