package files

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxOfferBuckets bounds the per-peer buckets offerLimits keeps; past it,
// the fullest go first (a full bucket is what a new one would be).
const maxOfferBuckets = 1024

// offerLimits holds a token bucket per peer for the offers it makes us
// (RELIABILITY.md L7): a peer may offer OfferBurst at once, then OfferRate
// a second. It runs on the service's clock. The table stays small: a
// bucket that has refilled is dropped at the next sweep (one at most every
// refill time, burst/rate), and past maxOfferBuckets the fullest quarter
// goes.
type offerLimits struct {
	mu     sync.Mutex
	rate   rate.Limit
	burst  int
	refill time.Duration // how long an empty bucket takes to fill
	now    func() time.Time
	m      map[peer.ID]*rate.Limiter
	swept  time.Time
}

func newOfferLimits(r float64, burst int, now func() time.Time) *offerLimits {
	return &offerLimits{
		rate: rate.Limit(r), burst: burst, now: now, m: make(map[peer.ID]*rate.Limiter),
		refill: time.Duration(float64(burst) / r * float64(time.Second)),
	}
}

// allow takes one token from p's bucket, reporting whether it had one.
func (l *offerLimits) allow(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	b, ok := l.m[p]
	if !ok {
		if len(l.m) >= maxOfferBuckets {
			l.trim(now)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.m[p] = b
	}
	// Count from now: on a clock that went back, rate.Limiter would add
	// nothing, and refuse, until the clock reached its last event again.
	b.SetLimitAt(now, l.rate)
	return b.AllowN(now, 1)
}

// sweep drops the buckets that are full at now, once per refill time (or
// at once when the clock went back: a bucket then refills from now).
func (l *offerLimits) sweep(now time.Time) {
	if d := now.Sub(l.swept); d >= 0 && d < l.refill {
		return
	}
	l.swept = now
	for p, b := range l.m {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.m, p)
		}
	}
}

// trim drops the fullest buckets until a quarter of maxOfferBuckets is
// free: a peer that is out of tokens keeps its empty bucket.
func (l *offerLimits) trim(now time.Time) {
	type entry struct {
		p      peer.ID
		tokens float64
	}
	all := make([]entry, 0, len(l.m))
	for p, b := range l.m {
		all = append(all, entry{p, b.TokensAt(now)})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.tokens, a.tokens) })
	for _, e := range all[:len(all)-maxOfferBuckets*3/4] {
		delete(l.m, e.p)
	}
}

// buckets is how many buckets are kept (tests).
func (l *offerLimits) buckets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
