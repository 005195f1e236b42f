package files

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeClock is a clock the test moves; it starts at 2026-01-01.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_767_225_600, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// RELIABILITY L7, the bucket: a peer may offer burst at once, then rate a
// second; another peer has a bucket of its own; a clock that jumps back a
// day (F7) neither refills a bucket nor locks its peer out beyond the
// bucket's own refill time.
func TestOfferLimitsPerPeer(t *testing.T) {
	clock := newFakeClock()
	l := newOfferLimits(2, 16, clock.now)
	ana, ben := peer.ID("ana"), peer.ID("ben")
	taken := func(p peer.ID) int {
		n := 0
		for l.allow(p) {
			n++
		}
		return n
	}
	if n := taken(ana); n != 16 {
		t.Errorf("ana offered %d at once, want the burst of 16", n)
	}
	if !l.allow(ben) {
		t.Error("ben was refused because ana drained her bucket")
	}
	clock.add(500 * time.Millisecond)
	if n := taken(ana); n != 1 {
		t.Errorf("0.5 s later ana offered %d more, want 1 (2 a second)", n)
	}
	clock.add(-24 * time.Hour)
	if l.allow(ana) {
		t.Error("the clock went back a day and ana's empty bucket was refilled")
	}
	clock.add(time.Second)
	if n := taken(ana); n != 2 {
		t.Errorf("1 s after the jump back ana offered %d, want 2", n)
	}
	clock.add(48 * time.Hour)
	if n := taken(ana); n != 16 {
		t.Errorf("after the clock jumped a day ahead ana offered %d, want the burst of 16 (no more)", n)
	}
}

// The per-peer table stays bounded (the L9 concern: no state for every peer
// ever seen): buckets that refilled are dropped once the refill time has
// passed, and a flood of fresh peer IDs keeps at most maxOfferBuckets,
// pushing out full buckets, never a drained one.
func TestOfferLimitsBounded(t *testing.T) {
	clock := newFakeClock()
	l := newOfferLimits(2, 16, clock.now)
	for i := range 100 {
		l.allow(peer.ID("idle-" + strconv.Itoa(i)))
	}
	clock.add(l.refill)
	l.allow("ana")
	if n := l.buckets(); n != 1 {
		t.Errorf("%d buckets kept after 100 peers offered once and the refill time passed, want 1 (ana's)", n)
	}

	heavy := peer.ID("flooder")
	for l.allow(heavy) {
	}
	for i := range 3 * maxOfferBuckets {
		l.allow(peer.ID("fresh-" + strconv.Itoa(i)))
		if n := l.buckets(); n > maxOfferBuckets {
			t.Fatalf("after %d fresh peers, %d buckets kept; at most %d", i+1, n, maxOfferBuckets)
		}
	}
	if l.allow(heavy) {
		t.Error("the flooder's drained bucket was dropped: it may offer again at once")
	}
}

// The service applies the bucket to offers, before it parses them: past
// the burst a peer's offer is answered RATE_LIMITED and not stored, while
// another peer's offer is taken; once the bucket refills, the first peer's
// next offer is taken too.
func TestOfferRateLimited(t *testing.T) {
	clock := newFakeClock()
	b := newNodeWith(t, Config{OfferBurst: 3, OfferRate: 0.5, MaxPendingOffers: 100}, []Option{WithClock(clock.now)})
	storm, other := newFakeSender(t, 10, nil), newFakeSender(t, 10, nil)
	offer := func(f *fakeSender) protocols.FilesFrame {
		f.id = NewTransferID()
		return f.offer(t, b, f.src.Bytes)
	}
	for i := range 3 {
		if ans := offer(storm); ans.OfferAck == nil {
			t.Fatalf("offer %d within the burst answered %+v", i, ans)
		}
	}
	for i := range 5 {
		ans := offer(storm)
		if ans.Error == nil || ans.Error.Code != protocols.CodeRateLimited || ans.Error.Message != ErrOfferRate.Error() {
			t.Fatalf("offer %d past the burst answered %+v, want RATE_LIMITED %q", 3+i, ans, ErrOfferRate)
		}
	}
	if ans := offer(other); ans.OfferAck == nil {
		t.Errorf("another peer's offer answered %+v during the first one's excess", ans)
	}
	clock.add(2 * time.Second) // one token at 0.5 a second
	if ans := offer(storm); ans.OfferAck == nil {
		t.Errorf("the first peer's offer after its bucket refilled one token answered %+v", ans)
	}
	if ans := offer(storm); ans.Error == nil || ans.Error.Code != protocols.CodeRateLimited {
		t.Errorf("the next one answered %+v, want RATE_LIMITED", ans)
	}
	held := map[peer.ID]int{}
	ts, _ := b.store.Transfers(t.Context(), Filter{})
	for _, tr := range ts {
		held[tr.Peer]++
	}
	if held[storm.h.ID()] != 4 || held[other.h.ID()] != 1 {
		t.Errorf("stored %d offers of the storming peer (want 4) and %d of the other (want 1)", held[storm.h.ID()], held[other.h.ID()])
	}
}
