package chat

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// outboxStore is a Store with only an outbox: the queued messages per peer.
type outboxStore struct {
	mu     sync.Mutex
	queued map[peer.ID][]Message
}

func (s *outboxStore) Outbox(_ context.Context, p peer.ID) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p != "" {
		return s.queued[p], nil
	}
	var all []Message
	for _, ms := range s.queued {
		all = append(all, ms...)
	}
	return all, nil
}

func (s *outboxStore) AddIncoming(context.Context, Message) (bool, error)  { return false, nil }
func (s *outboxStore) AddOutgoing(context.Context, Message) error          { return nil }
func (s *outboxStore) MarkDelivered(context.Context, MessageID) error      { return nil }
func (s *outboxStore) MarkFailed(context.Context, MessageID) error         { return nil }
func (s *outboxStore) Messages(context.Context, Filter) ([]Message, error) { return nil, nil }

// The DM outbox forgets every peer once nothing is under way for it: after
// delivery attempts to 1000 distinct peers (a node kicks the outbox of
// every peer that connects), the attempt table and the per-peer delivery
// locks are empty; after 1000 peers with queued mail failed (a back-off
// each) and their mail then went out another way (a Send's own delivery),
// the next pass forgets their back-off. (It kept an entry per peer ever
// tried, and a lock per peer ever sent to, for good: L9 in RELIABILITY.md.)
func TestOutboxForgetsPeers(t *testing.T) {
	const peers = 1000
	store := &outboxStore{queued: map[peer.ID][]Message{}}
	s := &DMService{store: store, cfg: DMConfig{}.withDefaults(), log: slog.Default()}
	s.ctx, s.cancel = context.WithCancel(t.Context())
	defer s.wg.Wait()
	defer s.cancel()
	o := newOutbox()
	id := func(i int) peer.ID { return peer.ID("peer-" + strconv.Itoa(i)) }
	held := func() string {
		return "inflight " + strconv.Itoa(len(o.inflight)) + ", next " + strconv.Itoa(len(o.next)) +
			", backoff " + strconv.Itoa(len(o.backoff)) + ", locks " + strconv.Itoa(s.sendLocks.len())
	}

	for i := range peers {
		s.attempt(o, id(i))
	}
	for range peers {
		s.finished(o, <-o.results)
	}
	if len(o.inflight)+len(o.next)+len(o.backoff)+s.sendLocks.len() != 0 {
		t.Fatalf("after attempts to %d peers with nothing queued: %s", peers, held())
	}

	for i := range peers {
		store.queued[id(i)] = []Message{{ID: MessageID{1}, Peer: id(i)}}
		s.finished(o, attemptResult{id(i), errors.New("unreachable")})
	}
	if len(o.next) != peers || len(o.backoff) != peers {
		t.Fatalf("after %d failures: %s", peers, held())
	}
	s.retryDue(o) // all still waiting out their back-off: kept
	if len(o.next) != peers || len(o.inflight) != 0 {
		t.Fatalf("a pass during the back-off: %s", held())
	}
	clear(store.queued) // delivered by the Sends themselves
	s.retryDue(o)
	if len(o.inflight)+len(o.next)+len(o.backoff) != 0 {
		t.Fatalf("a pass after the mail went: %s", held())
	}
}

// A delivery lock admits one delivery to a peer at a time, and its entry
// goes with the last delivery that held or waited for it, including one
// that gave up waiting.
func TestPeerLocks(t *testing.T) {
	var l peerLocks
	p := peer.ID("p")
	unlock, err := l.lock(t.Context(), p, nil)
	if err != nil || unlock == nil {
		t.Fatal("the first delivery did not get the lock", err)
	}
	done := make(chan struct{})
	close(done)
	if u, err := l.lock(t.Context(), p, done); u != nil || err != nil {
		t.Fatal("a second delivery got the lock held by the first")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if u, err := l.lock(ctx, p, nil); u != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("a delivery whose context ended got the lock", err)
	}
	got := make(chan func())
	go func() {
		u, _ := l.lock(t.Context(), p, nil)
		got <- u
	}()
	refs := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		if e := l.m[p]; e != nil {
			return e.refs
		}
		return 0
	}
	deadline := time.Now().Add(time.Minute)
	for refs() != 2 { // the holder and the waiter
		if time.Now().After(deadline) {
			t.Fatalf("the second delivery never waited (refs %d)", refs())
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	select {
	case <-got:
		t.Fatal("a waiting delivery got the lock while it was held")
	default:
	}
	unlock()
	u := <-got
	if l.len() != 1 {
		t.Fatalf("%d entries while the second delivery holds the lock", l.len())
	}
	u()
	if l.len() != 0 {
		t.Fatalf("%d entries after every delivery ended", l.len())
	}
}
