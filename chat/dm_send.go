package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// sendWindow is how many messages a sender writes before reading their
// acks, so a backlog is not limited by one round trip per message.
const sendWindow = 32

// deliverPeer sends p's whole outbox on one stream; each message p acks or
// refuses is settled. Only one delivery to a peer runs at a time: while
// another runs, deliverPeer waits for it, and returns without sending when
// done is closed first (the caller's message went out on that delivery).
//
// The stream is the one an earlier delivery kept, when it is still good,
// else a new one; after the delivery it is kept for the next (see
// streamCache). When a kept stream breaks (the peer restarted or closed it,
// the connection dropped), what is still queued is sent again, once, on a
// new stream: the receiver stores a message once however often it comes.
func (s *DMService) deliverPeer(ctx context.Context, p peer.ID, done <-chan struct{}) error {
	unlock, err := s.sendLocks.lock(ctx, p, done)
	if err != nil {
		return fmt.Errorf("chat: wait for the delivery to %s under way: %w", p, err)
	}
	if unlock == nil {
		return nil
	}
	defer unlock()
	queued, err := s.store.Outbox(ctx, p)
	if err != nil || len(queued) == 0 {
		return err
	}
	if o := s.keptStream(p); o != nil {
		err := s.deliverOn(ctx, p, o, queued)
		if !errors.Is(err, errStream) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("kept stream broke, sending on a new one", "peer", p, "err", err)
		if queued, err = s.store.Outbox(ctx, p); err != nil || len(queued) == 0 {
			return err
		}
	}
	o, err := s.openStream(ctx, p)
	if err != nil {
		return err
	}
	return s.deliverOn(ctx, p, o, queued)
}

// keptStream takes p's kept stream if it can carry a delivery, and closes
// it otherwise.
func (s *DMService) keptStream(p peer.ID) *outStream {
	o := s.streams.take(p)
	if o == nil || s.reusable(p, o) {
		return o
	}
	s.streams.drop(p)
	o.st.Reset()
	return nil
}

// errStream marks the failures of the stream itself (a write or read error,
// a reset, a deadline), as opposed to the peer's answers.
var errStream = errors.New("stream failed")

// errDeferred marks a receiver's "not now" (protocols.CodeRateLimited,
// CodeInternal): the message stays queued for the outbox's back-off.
var errDeferred = errors.New("chat: the peer deferred the message")

// deliverOn sends msgs on o, then keeps o for the next delivery to p, or
// resets it when anything went wrong or ctx ended.
func (s *DMService) deliverOn(ctx context.Context, p peer.ID, o *outStream, msgs []Message) error {
	stop := context.AfterFunc(ctx, func() { o.st.Reset() })
	err := s.sendOn(ctx, o, msgs)
	if stop() && err == nil {
		if !s.streams.put(p, o) {
			o.st.Close() // the service is closing
		}
		return nil
	}
	s.streams.drop(p)
	o.st.Reset()
	return err
}

// sendOn writes msgs in windows of sendWindow and reads an ack for each,
// each write and read under its own deadline.
func (s *DMService) sendOn(ctx context.Context, o *outStream, msgs []Message) error {
	for len(msgs) > 0 {
		batch := msgs[:min(sendWindow, len(msgs))]
		msgs = msgs[len(batch):]
		o.st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		for _, m := range batch {
			f := protocols.DMFrame{Message: &protocols.DMMessage{ID: m.ID, SentAt: m.SentAt, Text: m.Text}}
			if err := o.w.Write(f); err != nil {
				return fmt.Errorf("chat: send: %w: %w", errStream, err)
			}
		}
		for _, m := range batch {
			o.st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if err := s.readAck(ctx, o.r, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// readAck waits for the ack of m and records the delivery.
func (s *DMService) readAck(ctx context.Context, r *protocols.DMReader, m Message) error {
	f, err := r.Read()
	switch {
	case err != nil && !frameError(err):
		return fmt.Errorf("chat: read ack: %w: %w", errStream, err)
	case err != nil:
		return fmt.Errorf("chat: read ack: %w", err)
	case f.Error != nil && deferred(f.Error.Code):
		// The receiver may take it later (rate limit, a failing store): the
		// message stays queued and the outbox retries with back-off.
		s.log.Debug("message deferred by peer", "peer", m.Peer, "id", m.ID, "code", f.Error.Code)
		return fmt.Errorf("%w (%s)", errDeferred, f.Error.Code)
	case f.Error != nil:
		s.refused(ctx, m, f.Error)
		return f.Error
	case f.Ack == nil || f.Ack.ID != m.ID:
		return fmt.Errorf("chat: peer answered out of order")
	}
	if err := s.store.MarkDelivered(ctx, m.ID); err != nil {
		return fmt.Errorf("chat: mark delivered: %w", err)
	}
	m.State = StateDelivered
	s.settle(m.ID, outcome{state: StateDelivered})
	s.notify(m)
	return nil
}

// frameError says whether err is about a frame the peer sent, rather than
// a failure of the stream (a frame cut short by the end of the stream is the
// latter).
func frameError(err error) bool {
	return !errors.Is(err, io.ErrUnexpectedEOF) && (errors.Is(err, protocols.ErrMalformed) ||
		errors.Is(err, protocols.ErrFrameTooLarge) || errors.Is(err, protocols.ErrUnsupportedVersion))
}

// deferred reports whether a receiver's error code means "not now" rather
// than "never" (protocols/doc.go, the retry column).
func deferred(c protocols.ErrorCode) bool {
	return c == protocols.CodeRateLimited || c == protocols.CodeInternal
}

// refused takes a message the peer will never accept out of the outbox.
func (s *DMService) refused(ctx context.Context, m Message, re *protocols.RemoteError) {
	s.log.Info("message refused", "peer", m.Peer, "id", m.ID, "code", re.Code)
	if err := s.store.MarkFailed(ctx, m.ID); err != nil {
		s.log.Warn("mark failed", "id", m.ID, "err", err)
		return
	}
	m.State = StateFailed
	s.settle(m.ID, outcome{state: StateFailed, err: re})
	s.notify(m)
}

// outbox is the state of the delivery loop, owned by runOutbox. Its maps
// hold only peers with something under way: an attempt running, or queued
// mail waiting out a back-off (retryDue forgets the back-off of a peer
// whose mail went another way, a Send's own delivery).
type outbox struct {
	next     map[peer.ID]time.Time     // earliest next attempt
	backoff  map[peer.ID]time.Duration // current back-off
	inflight map[peer.ID]bool          // an attempt runs
	results  chan attemptResult
}

func newOutbox() *outbox {
	return &outbox{
		next: make(map[peer.ID]time.Time), backoff: make(map[peer.ID]time.Duration),
		inflight: make(map[peer.ID]bool), results: make(chan attemptResult),
	}
}

type attemptResult struct {
	p   peer.ID
	err error
}

// runOutbox delivers queued messages: at start, when a peer connects, and
// with per-peer exponential back-off otherwise. Attempts to different peers
// run in parallel, so an unreachable peer does not hold up the others.
func (s *DMService) runOutbox() {
	o := newOutbox()
	tick := time.NewTicker(s.cfg.RetryMin)
	defer tick.Stop()
	s.retryDue(o)
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.kick:
			delete(o.next, p)
			s.attempt(o, p)
		case <-s.retryAll:
			clear(o.next)
			clear(o.backoff)
			s.retryDue(o)
		case r := <-o.results:
			s.finished(o, r)
		case <-tick.C:
			s.retryDue(o)
		}
	}
}

// retryDue attempts every peer with queued mail whose back-off has passed,
// and forgets the back-off of peers with none left.
func (s *DMService) retryDue(o *outbox) {
	queued, err := s.store.Outbox(s.ctx, "")
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("read outbox", "err", err)
		}
		return
	}
	now := time.Now()
	mail := make(map[peer.ID]bool)
	for _, m := range queued {
		mail[m.Peer] = true
		if now.After(o.next[m.Peer]) {
			s.attempt(o, m.Peer)
		}
	}
	maps.DeleteFunc(o.next, func(p peer.ID, _ time.Time) bool { return !mail[p] && !o.inflight[p] })
	maps.DeleteFunc(o.backoff, func(p peer.ID, _ time.Duration) bool { return !mail[p] && !o.inflight[p] })
}

// attempt starts one delivery of p's outbox unless one is running.
func (s *DMService) attempt(o *outbox, p peer.ID) {
	if o.inflight[p] {
		return
	}
	o.inflight[p] = true
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.SendTimeout)
		err := s.deliverPeer(ctx, p, nil)
		cancel()
		select {
		case o.results <- attemptResult{p, err}:
		case <-s.ctx.Done():
		}
	})
}

// finished takes an attempt's result.
func (s *DMService) finished(o *outbox, r attemptResult) {
	delete(o.inflight, r.p)
	s.schedule(o, r)
}

// schedule records an attempt's outcome: success or refusal resets p's
// back-off; any other failure doubles it.
func (s *DMService) schedule(o *outbox, r attemptResult) {
	var re *protocols.RemoteError
	if r.err == nil || errors.As(r.err, &re) {
		delete(o.next, r.p)
		delete(o.backoff, r.p)
		return
	}
	d := min(max(2*o.backoff[r.p], s.cfg.RetryMin), s.cfg.RetryMax)
	o.backoff[r.p] = d
	o.next[r.p] = time.Now().Add(d + time.Duration(rand.Int64N(int64(d)/4+1)))
	s.log.Debug("delivery failed, will retry", "peer", r.p, "in", d, "err", r.err)
}

// watchPeers kicks the outbox of every peer that connects.
func (s *DMService) watchPeers(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Connectedness == network.Connected || ev.Connectedness == network.Limited {
				s.Kick(ev.Peer)
			}
		}
	}
}

// RetryAll asks the outbox to try every peer with queued mail now, back-off
// forgotten: for instance when the node has just (re)joined the network.
func (s *DMService) RetryAll() {
	select {
	case s.retryAll <- struct{}{}:
	default: // a retry of everything is already pending
	}
}

// Kick asks the outbox to try p now.
func (s *DMService) Kick(p peer.ID) {
	select {
	case s.kick <- p:
	default: // the outbox is busy; the periodic pass will get to p
	}
}
