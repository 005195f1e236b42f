package chat

import (
	"context"
	"errors"
	"fmt"
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
func (s *DMService) deliverPeer(ctx context.Context, p peer.ID, done <-chan struct{}) error {
	lock, _ := s.sendLocks.LoadOrStore(p, make(chan struct{}, 1))
	select {
	case lock.(chan struct{}) <- struct{}{}:
		defer func() { <-lock.(chan struct{}) }()
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chat: wait for the delivery to %s under way: %w", p, ctx.Err())
	}
	queued, err := s.store.Outbox(ctx, p)
	if err != nil || len(queued) == 0 {
		return err
	}
	// A relayed connection is enough for messages.
	sctx := network.WithAllowLimitedConn(ctx, "dm")
	st, err := s.h.NewStream(sctx, p, protocols.DMProtocol)
	if err != nil {
		return fmt.Errorf("chat: open stream to %s: %w", p, err)
	}
	defer st.Close()
	err = s.sendOn(ctx, st, queued)
	if err != nil {
		st.Reset()
	}
	return err
}

// sendOn writes msgs in windows of sendWindow and reads an ack for each.
func (s *DMService) sendOn(ctx context.Context, st network.Stream, msgs []Message) error {
	w, r := protocols.NewDMWriter(st), protocols.NewDMReader(st)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	for len(msgs) > 0 {
		batch := msgs[:min(sendWindow, len(msgs))]
		msgs = msgs[len(batch):]
		st.SetDeadline(time.Now().Add(s.cfg.IdleTimeout))
		for _, m := range batch {
			f := protocols.DMFrame{Message: &protocols.DMMessage{ID: m.ID, SentAt: m.SentAt, Text: m.Text}}
			if err := w.Write(f); err != nil {
				return fmt.Errorf("chat: send: %w", err)
			}
		}
		for _, m := range batch {
			if err := s.readAck(ctx, r, m); err != nil {
				return err
			}
		}
	}
	st.CloseWrite()
	return nil
}

// readAck waits for the ack of m and records the delivery.
func (s *DMService) readAck(ctx context.Context, r *protocols.DMReader, m Message) error {
	f, err := r.Read()
	switch {
	case err != nil:
		return fmt.Errorf("chat: read ack: %w", err)
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

// outbox is the state of the delivery loop, owned by runOutbox.
type outbox struct {
	next     map[peer.ID]time.Time     // earliest next attempt
	backoff  map[peer.ID]time.Duration // current back-off
	inflight map[peer.ID]bool
	results  chan attemptResult
}

type attemptResult struct {
	p   peer.ID
	err error
}

// runOutbox delivers queued messages: at start, when a peer connects, and
// with per-peer exponential back-off otherwise. Attempts to different peers
// run in parallel, so an unreachable peer does not hold up the others.
func (s *DMService) runOutbox() {
	o := &outbox{
		next: make(map[peer.ID]time.Time), backoff: make(map[peer.ID]time.Duration),
		inflight: make(map[peer.ID]bool), results: make(chan attemptResult),
	}
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
			o.inflight[r.p] = false
			s.schedule(o, r)
		case <-tick.C:
			s.retryDue(o)
		}
	}
}

// retryDue attempts every peer with queued mail whose back-off has passed.
func (s *DMService) retryDue(o *outbox) {
	queued, err := s.store.Outbox(s.ctx, "")
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("read outbox", "err", err)
		}
		return
	}
	now := time.Now()
	for _, m := range queued {
		if now.After(o.next[m.Peer]) {
			s.attempt(o, m.Peer)
		}
	}
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
