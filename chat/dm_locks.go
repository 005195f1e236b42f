package chat

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// peerLocks is a lock per peer, held by the delivery to that peer under
// way. A peer's entry lives only while a delivery holds or waits for its
// lock, so a long-running node that talked to many peers keeps none for
// those it is not sending to (a lock per peer ever tried grew for good,
// L9 in RELIABILITY.md).
type peerLocks struct {
	mu sync.Mutex
	m  map[peer.ID]*peerLock
}

type peerLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // deliveries holding or waiting for the lock
}

// lock waits for p's lock and returns its release. It returns nil when
// done is closed first (err nil) or ctx ends first (err ctx's).
func (l *peerLocks) lock(ctx context.Context, p peer.ID, done <-chan struct{}) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[peer.ID]*peerLock)
	}
	e := l.m[p]
	if e == nil {
		e = &peerLock{ch: make(chan struct{}, 1)}
		l.m[p] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.forget(p, e) }, nil
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.forget(p, e)
	return nil, err
}

// forget drops one reference to p's lock e, and the entry with the last.
func (l *peerLocks) forget(p peer.ID, e *peerLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, p)
	}
}

// len is the number of peers whose lock is held or waited for.
func (l *peerLocks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
