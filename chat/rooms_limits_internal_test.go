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

// The buckets of authors gone quiet go: in a room with churn every author
// leaves at some point, and a member that saw 1000 authors come and go,
// each sending a message, keeps fewer than sweepLimiters buckets once
// theirs are full again, not one per author ever seen. A bucket still
// drained (a flooder's, sending faster than its rate) is kept through the
// sweeps.
func TestRoomLimitersForgetQuietAuthors(t *testing.T) {
	now := time.Unix(1_767_225_600, 0)
	l := &limiters{rate: 20, burst: 80, m: map[peer.ID]*rate.Limiter{}, now: func() time.Time { return now }}
	heavy := peer.ID("flooder")
	for l.allow(heavy) {
	}
	for i := range 1000 {
		now = now.Add(time.Second) // each author's bucket is full again 50 ms after its message
		l.allow(peer.ID("author-" + strconv.Itoa(i)))
		if len(l.m) > sweepLimiters+1 {
			t.Fatalf("after %d authors, %d buckets kept; want at most %d", i+1, len(l.m), sweepLimiters+1)
		}
		got := 0 // the flooder goes on at 25 a second: 20 pass, its bucket never refills
		for range 25 {
			if l.allow(heavy) {
				got++
			}
		}
		if got > 21 {
			t.Fatalf("after %d authors the flooder passed %d of 25 in a second: its drained bucket was dropped", i+1, got)
		}
	}
	t.Logf("%d buckets kept after 1000 authors", len(l.m))
}
