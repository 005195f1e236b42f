package chat

import (
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// A flood of fresh identities (anyone can sign room messages with new keys)
// keeps the per-author buckets and the penalty table bounded, and pushes out
// neither a drained bucket nor a heavy offender's record.
func TestHostileRoomTablesBounded(t *testing.T) {
	fresh := func(i int) peer.ID { return peer.ID("fresh-" + strconv.Itoa(i)) }
	const flood = 3 * maxLimiters

	l := &limiters{rate: rate.Limit(1e-6), burst: 2, m: map[peer.ID]*rate.Limiter{}}
	heavy := peer.ID("flooder")
	for l.allow(heavy) {
	}
	for i := range flood {
		l.allow(fresh(i))
		if len(l.m) > maxLimiters {
			t.Fatalf("after %d fresh authors, %d buckets kept; at most %d", i+1, len(l.m), maxLimiters)
		}
	}
	if l.allow(heavy) {
		t.Error("the flooder's drained bucket was dropped: it may send again")
	}

	now := time.Unix(1_767_225_600, 0)
	ps := newPenalties()
	ps.now = func() time.Time { return now }
	for range 20 {
		ps.add(heavy)
	}
	before := ps.score(heavy)
	for i := range flood {
		ps.add(fresh(i))
		if len(ps.m) > maxPenalised {
			t.Fatalf("after %d fresh offenders, %d kept; at most %d", i+1, len(ps.m), maxPenalised)
		}
	}
	if got := ps.score(heavy); got != before || got > -PenaltyWeight*400+1 {
		t.Errorf("the heavy offender's score is %v after the flood, was %v", got, before)
	}
}
