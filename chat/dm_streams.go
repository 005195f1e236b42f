package chat

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// outStream is an outgoing DM stream with its frame reader and writer.
type outStream struct {
	st   network.Stream
	r    *protocols.DMReader
	w    *protocols.DMWriter
	used time.Time // when a delivery last ended on it (wall and monotonic)
}

// openStream opens a DM stream to p, in the service's resource scope.
func (s *DMService) openStream(ctx context.Context, p peer.ID) (*outStream, error) {
	// A relayed connection is enough for messages.
	ctx = network.WithAllowLimitedConn(ctx, "dm")
	st, err := s.h.NewStream(ctx, p, protocols.DMProtocol)
	if err != nil {
		return nil, fmt.Errorf("chat: open stream to %s: %w", p, err)
	}
	if err := st.Scope().SetService(DMServiceName); err != nil {
		st.Reset()
		return nil, fmt.Errorf("chat: stream to %s: %w", p, err)
	}
	return &outStream{st: st, r: protocols.NewDMReader(st), w: protocols.NewDMWriter(st)}, nil
}

// reusable says whether o, kept idle since its last delivery, can carry
// another: its connection is open, it has been idle less than StreamIdle by
// the wall clock too (the monotonic clock stops while a laptop sleeps, the
// receiver's does not), it is not on a relayed connection while a direct one
// exists, and the peer has sent nothing on it since: no end of stream, no
// reset, no frame. An unasked-for frame would be an Error sent by an earlier
// kith receiver when its deadline passed, and would otherwise be read as the
// refusal of the next message. (The read that checks this returns pending
// data on yamux; a QUIC stream reports only the end of the stream or a reset
// once the deadline has passed.)
func (s *DMService) reusable(p peer.ID, o *outStream) bool {
	c := o.st.Conn()
	switch {
	case c.IsClosed():
		return false
	case time.Since(o.used) >= s.cfg.StreamIdle,
		time.Now().Round(0).Sub(o.used.Round(0)) >= s.cfg.StreamIdle:
		return false
	case c.Stat().Limited && s.h.Network().Connectedness(p) == network.Connected:
		return false
	}
	o.st.SetReadDeadline(time.Now().Add(-time.Second))
	var b [1]byte
	_, err := o.st.Read(b[:])
	return timedOut(err)
}

// streamCache holds at most one outgoing stream per peer, from the end of a
// delivery until the next one takes it or it has been idle for idle.
type streamCache struct {
	idle time.Duration
	wake chan struct{} // a stream was added: the idle closer rechecks

	mu     sync.Mutex
	m      map[peer.ID]*cachedStream
	closed bool // the service is closing: nothing more is kept
}

type cachedStream struct {
	o    *outStream
	busy bool // taken by a delivery
}

func newStreamCache(idle time.Duration) *streamCache {
	return &streamCache{idle: idle, wake: make(chan struct{}, 1), m: make(map[peer.ID]*cachedStream)}
}

// take hands p's kept stream, if any, to the delivery to p, which must give
// it back with put or drop.
func (c *streamCache) take(p peer.ID) *outStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[p]
	if e == nil {
		return nil
	}
	e.busy = true
	return e.o
}

// put keeps o as p's stream once a delivery on it has ended. It returns
// false when the cache is closed: the caller closes o.
func (c *streamCache) put(p peer.ID, o *outStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		delete(c.m, p)
		return false
	}
	o.used = time.Now()
	e := c.m[p]
	if e == nil {
		e = &cachedStream{}
		c.m[p] = e
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	e.o, e.busy = o, false
	return true
}

// drop forgets p's stream, taken by a delivery that will not give it back.
func (c *streamCache) drop(p peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, p)
}

// expire removes the streams idle for c.idle at now and returns them, with
// when to look again (zero: no stream is kept). A stream in use is looked
// at again c.idle from now, no earlier than it can have become idle.
func (c *streamCache) expire(now time.Time) (next time.Time, expired []*outStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, e := range c.m {
		at := now.Add(c.idle)
		if !e.busy {
			at = e.o.used.Add(c.idle)
			if !now.Before(at) {
				expired = append(expired, e.o)
				delete(c.m, p)
				continue
			}
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, expired
}

// close stops keeping streams and returns the idle ones. A stream in use is
// closed by its delivery when it ends (put returns false).
func (c *streamCache) close() []*outStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var idle []*outStream
	for _, e := range c.m {
		if !e.busy {
			idle = append(idle, e.o)
		}
	}
	clear(c.m)
	return idle
}

// closeIdleStreams closes each kept stream once it has been idle for
// StreamIdle, until the service closes.
func (s *DMService) closeIdleStreams() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		next, expired := s.streams.expire(time.Now())
		for _, o := range expired {
			s.log.Debug("closing idle stream", "peer", o.st.Conn().RemotePeer())
			o.st.Close()
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			t.Reset(time.Until(next))
			fire = t.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.streams.wake:
		case <-fire:
		}
	}
}
