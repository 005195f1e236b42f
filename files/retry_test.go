package files

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The retrier forgets every peer once nothing is under way for it: after
// attempts for 1000 distinct peers (as a long-running node makes, one for
// every peer that ever connected), half of them kicked again while their
// attempt ran, and after 1000 peers failed and then had no work left, its
// tables are empty. (It kept an entry per peer ever tried, for good: L9 in
// RELIABILITY.md.)
func TestRetrierForgetsPeers(t *testing.T) {
	const peers = 1000
	s := &Service{store: &memStore{}, cfg: Config{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond}.withDefaults(),
		log: slog.Default()}
	s.ctx, s.cancel = context.WithCancel(t.Context())
	defer s.wg.Wait()
	defer s.cancel()
	r := newRetrier(s)
	s.retry = r
	id := func(i int) peer.ID { return peer.ID("peer-" + strconv.Itoa(i)) }
	empty := func(when string) {
		t.Helper()
		if n := len(r.inflight) + len(r.again) + len(r.next) + len(r.backoff); n != 0 {
			t.Fatalf("%s: the retrier holds inflight %d, again %d, next %d, backoff %d entries",
				when, len(r.inflight), len(r.again), len(r.next), len(r.backoff))
		}
	}

	for i := range peers {
		r.attempt(id(i))
	}
	for i := range peers / 2 {
		r.attempt(id(i)) // kicked while its attempt runs
	}
	if len(r.inflight) != peers || len(r.again) != peers/2 {
		t.Fatalf("during the attempts: inflight %d, again %d", len(r.inflight), len(r.again))
	}
	for range peers + peers/2 {
		r.finished(<-r.results)
	}
	empty("after 1000 peers' attempts")

	for i := range peers {
		r.finished(attemptResult{id(i), errors.New("unreachable")})
	}
	if len(r.next) != peers || len(r.backoff) != peers {
		t.Fatalf("after 1000 failures: next %d, backoff %d", len(r.next), len(r.backoff))
	}
	// Their back-off passes; due attempts them again, each finds no work
	// left and succeeds.
	deadline := time.Now().Add(time.Minute)
	for len(r.next)+len(r.inflight) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a minute on, next %d, inflight %d", len(r.next), len(r.inflight))
		}
		r.due(false)
		for range len(r.inflight) {
			r.finished(<-r.results)
		}
		time.Sleep(time.Millisecond) // poll interval: the back-off to pass
	}
	empty("after the failed peers had no work left")
}

// A sender keeps nothing for its offers once they are over: 8 peers
// decline one offer each, and the service then holds no source (manifest)
// or rate meter for any of them. (It kept both for every declined offer.)
func TestSenderForgetsDeclinedOffers(t *testing.T) {
	const peers = 8
	a := newNode(t, Config{})
	src := filepath.Join(t.TempDir(), "notes.txt")
	randomFile(t, src, 1000)
	for range peers {
		b := newNode(t, Config{})
		know(a, b)
		out, err := a.svc.Send(t.Context(), b.h.ID(), []string{src}, SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		offer := b.waitOffer(t)
		if _, err := b.svc.Reject(t.Context(), offer.ID); err != nil {
			t.Fatal(err)
		}
		a.waitState(t, out.ID, StateRejected)
	}
	a.svc.mu.Lock()
	defer a.svc.mu.Unlock()
	if len(a.svc.sources)+len(a.svc.rates)+len(a.svc.shares)+len(a.svc.keep) != 0 {
		t.Fatalf("after %d declined offers the sender holds %d sources, %d meters, %d shares, %d kept",
			peers, len(a.svc.sources), len(a.svc.rates), len(a.svc.shares), len(a.svc.keep))
	}
}
