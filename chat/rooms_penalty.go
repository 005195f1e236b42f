package chat

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Penalties for what a receiver judges by its own state.
//
// A message over its author's rate, or stated too far in the future, is
// judged by our buckets and our clock; another member, with other buckets
// or another clock, may rightly accept and forward it. Such a message is
// therefore never rejected (pubsub would then count every later copy of it,
// from any honest forwarder, as that forwarder's invalid delivery): it is
// ignored. When its author sent a message over its rate to us itself, the
// author is penalised through pubsub's application-specific score instead;
// a clock far ahead is not penalised, since an honest colleague's clock
// can be wrong.
//
// The penalty is -PenaltyWeight × n², n being the count of such messages,
// forgotten over 10 minutes like invalid deliveries (RoomTopicScoreParams'
// P4). With weight 10, 8 offences put a peer below the gossip threshold
// (-640 < -500), 11 below the publish threshold and 16 on the graylist
// (-2560 < -2500); an honest member never offends, since Send waits on a
// bucket RateSlack smaller than the one members judge it by (delivery
// jitter up to RateSlack is allowed for).
const PenaltyWeight = 10

// penaltyForget is how long an offence takes to fade to 1% of its weight.
const penaltyForget = 10 * time.Minute

// maxPenalised bounds the peers tracked; past it, those with the fewest
// offences go (trim).
const maxPenalised = 4096

// penalties counts offences per peer, decaying over time.
type penalties struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[peer.ID]*offences
}

type offences struct {
	n  float64
	at time.Time
}

func newPenalties() *penalties {
	return &penalties{now: time.Now, m: make(map[peer.ID]*offences)}
}

// decayed returns o's count at now.
func (o *offences) decayed(now time.Time) float64 {
	return o.n * math.Pow(0.01, float64(now.Sub(o.at))/float64(penaltyForget))
}

// add counts one offence of p.
func (ps *penalties) add(p peer.ID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	o, ok := ps.m[p]
	if !ok {
		trim(ps.m, maxPenalised, func(o *offences) float64 { return o.decayed(now) })
		o = &offences{}
		ps.m[p] = o
	}
	o.n, o.at = o.decayed(now)+1, now
}

// score is p's application-specific score (weight 1).
func (ps *penalties) score(p peer.ID) float64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	o, ok := ps.m[p]
	if !ok {
		return 0
	}
	n := o.decayed(ps.now())
	return -PenaltyWeight * n * n
}

// penalise ignores msg, which broke a rule judged by our own state, and
// penalises its author when the author sent it to us itself.
func (s *RoomService) penalise(msg *pubsub.Message) pubsub.ValidationResult {
	if s.pen != nil && msg.ReceivedFrom == msg.GetFrom() {
		s.pen.add(msg.GetFrom())
	}
	return pubsub.ValidationIgnore
}

// trim keeps m, a table per peer, under limit entries: once it holds limit,
// it drops the entries worth least until it holds 3/4 of limit. Peers that
// keep adding fresh identities thus cost at most limit entries, one sort a
// limit/4 additions, and cannot push out the entries worth most (the peers
// with the most offences, the buckets most drained).
func trim[V any](m map[peer.ID]V, limit int, worth func(V) float64) {
	if len(m) < limit {
		return
	}
	type entry struct {
		p peer.ID
		w float64
	}
	all := make([]entry, 0, len(m))
	for p, v := range m {
		all = append(all, entry{p, worth(v)})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.w, b.w) })
	for _, e := range all[:len(m)-limit*3/4] {
		delete(m, e.p)
	}
}
