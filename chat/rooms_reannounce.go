package chat

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Re-announcing our subscription to a room, when a member refuses us.
//
// go-libp2p-pubsub v0.17 forgets a peer's subscriptions when it handles
// the death of its stream to the peer (handleDeadPeers), and learns them
// only from the hello on a new stream and from later announcements. When a
// member comes back on a new connection quickly, the member that stayed
// may read its hello on the new connection before it handles the death of
// the old one (its event loop takes them from separate channels, in either
// order, and on a loaded machine late): it then forgets the subscription it
// has just learnt, and nothing announces it again (upstream:
// berty/go-orbit-db#180). From then on, until the next reconnect, it lists
// the member in none of their rooms: it neither forwards the member
// messages nor serves it history (NOT_ALLOWED), while the member, whose own
// view is whole, keeps asking.
//
// What the member that came back can see is that refusal: a member its own
// router lists in the room refuses its history requests, round after round.
// When one member has refused it for reannounceAfter, it cancels its
// subscription and subscribes again, which makes pubsub announce the
// subscription to every peer again (an unsubscribe, then a subscribe, on
// the streams that are up): the member that refused learns it, and serves
// and forwards again. That is at most once per room per reannounceEvery,
// and once per refusing member while it stays in the room, so that a
// member that refuses on purpose cannot make us churn the room.
//
// Why not reset the pubsub streams to the member, or reconnect: pubsub
// forgets a peer's subscriptions whenever our stream to it dies, so either
// side's reset makes the other re-learn only from a hello that races with
// that death again, the very race being repaired; and each such death
// counts towards pubsub's dead-peer back-off, after 4 of which in 10
// minutes it stops talking to a peer that is still connected.
// Re-announcing is deterministic: the subscribe goes over the streams that
// are up, and nothing forgets it afterwards.
//
// What it costs: the other members see us leave and rejoin the room, so
// each asks us for history once (a member back, historyClient's owed);
// GossipSub prunes us from its meshes for the unsubscribe back-off (10 s),
// during which what others relay reaches us by gossip while every author's
// own messages still reach us directly (flood publishing). A message that
// reaches our router in the instant between the two subscriptions is
// delivered to neither and lost live; the history round that follows a
// second later asks the member that refused us, which now answers with
// everything we lack above what we hold.
const (
	// reannounceAfter is how long a member our router lists in the room
	// may refuse our history requests, with no answer between, before we
	// re-announce: a router that has not read our subscription yet (we just
	// joined, or came back) refuses for a heartbeat or two, or a second or
	// more under load. Refused rounds are retried a second apart
	// (historyRefusedFast), and sooner when members join, so it is a time,
	// not a count.
	reannounceAfter = 3 * time.Second
	// reannounceEvery is the least time between two re-announcements in a
	// room.
	reannounceEvery = time.Minute
)

// roomSubBuffer is the buffer of a room's subscription (messages validated
// and not yet read).
const roomSubBuffer = 1024

// reannouncer is a room's re-announcement state.
type reannouncer struct {
	mu      sync.Mutex
	refused map[peer.ID]time.Time // the first of a member's refusals in a row
	done    map[peer.ID]bool      // members we re-announced for while they stay in the room
	last    time.Time             // the last re-announcement
}

func newReannouncer() *reannouncer {
	return &reannouncer{refused: map[peer.ID]time.Time{}, done: map[peer.ID]bool{}}
}

// answered records that p answered a history request.
func (r *reannouncer) answered(p peer.ID) {
	r.mu.Lock()
	delete(r.refused, p)
	r.mu.Unlock()
}

// left forgets p, which left the room: if it comes back and refuses us, we
// may re-announce for it again.
func (r *reannouncer) left(p peer.ID) {
	r.mu.Lock()
	delete(r.refused, p)
	delete(r.done, p)
	r.mu.Unlock()
}

// due counts a refusal by p, a member of the room as our router sees it
// (members lists them), and says whether to re-announce now; if so, it
// records the re-announcement.
func (r *reannouncer) due(p peer.ID, members []peer.ID, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Members that left without our seeing it go (topic events coalesce).
	gone := func(q peer.ID) bool { return !slices.Contains(members, q) }
	maps.DeleteFunc(r.refused, func(q peer.ID, _ time.Time) bool { return gone(q) })
	maps.DeleteFunc(r.done, func(q peer.ID, _ bool) bool { return gone(q) })
	if !slices.Contains(members, p) {
		return false
	}
	since, ok := r.refused[p]
	if !ok {
		r.refused[p] = now
		return false
	}
	if now.Sub(since) < reannounceAfter || r.done[p] || (!r.last.IsZero() && now.Sub(r.last) < reannounceEvery) {
		return false
	}
	r.last = now
	r.done[p] = true
	clear(r.refused)
	return true
}

// refusedBy handles a NOT_ALLOWED answer from p to our history request in
// j: once a member our router lists in the room has refused us for
// reannounceAfter, it re-announces our subscription.
func (s *RoomService) refusedBy(ctx context.Context, j *joined, p peer.ID) {
	if !j.reann.due(p, j.topic.ListPeers(), time.Now()) {
		return
	}
	s.log.Info("history: a member of the room refuses us as not subscribed; announcing our subscription again",
		"room", j.Name, "peer", p)
	s.reannounce(ctx, j)
}

// reannounce cancels j's subscription and subscribes again, which makes
// pubsub announce it to every peer. The reader moves to the new
// subscription once it has read what the old one held.
func (s *RoomService) reannounce(ctx context.Context, j *joined) {
	j.subMu.Lock()
	defer j.subMu.Unlock()
	if ctx.Err() != nil { // the room is being left: unsubscribe cancels j.sub
		return
	}
	j.sub.Cancel()
	sub, err := j.topic.Subscribe(pubsub.WithBufferSize(roomSubBuffer))
	if err != nil { // pubsub is closing; the reader ends with the old one
		s.log.Warn("room: subscribe again", "room", j.Name, "err", err)
		return
	}
	j.sub = sub
}

// subscription returns j's current subscription.
func (j *joined) subscription() *pubsub.Subscription {
	j.subMu.Lock()
	defer j.subMu.Unlock()
	return j.sub
}

// cancelSubscription cancels j's subscription for good (j's context is
// cancelled first, so that reannounce subscribes no more).
func (j *joined) cancelSubscription() {
	j.subMu.Lock()
	defer j.subMu.Unlock()
	j.sub.Cancel()
}
