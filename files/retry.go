package files

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// retrier keeps every transfer moving: it delivers offers, answers offers
// (reject) and completions, and fetches accepted transfers, per peer, at
// start, when the peer connects, when asked, and with exponential back-off
// after a failure. Work for different peers runs in parallel; work for one
// peer runs one attempt at a time.
type retrier struct {
	s       *Service
	kick    chan peer.ID
	all     chan struct{}
	results chan attemptResult
	// The maps hold only peers with something under way: an attempt
	// running, or failed work waiting out its back-off (due attempts those
	// too; an attempt that finds no work left succeeds and forgets them).
	next     map[peer.ID]time.Time
	backoff  map[peer.ID]time.Duration
	inflight map[peer.ID]bool // an attempt runs
	again    map[peer.ID]bool // kicked while an attempt ran: attempt again when it ends
}

type attemptResult struct {
	p   peer.ID
	err error
}

func newRetrier(s *Service) *retrier {
	return &retrier{
		s: s, kick: make(chan peer.ID, 64), all: make(chan struct{}, 1),
		results: make(chan attemptResult), next: make(map[peer.ID]time.Time),
		backoff: make(map[peer.ID]time.Duration), inflight: make(map[peer.ID]bool),
		again: make(map[peer.ID]bool),
	}
}

func (r *retrier) run() {
	tick := time.NewTicker(r.s.cfg.RetryMin)
	defer tick.Stop()
	r.due(true)
	for {
		select {
		case <-r.s.ctx.Done():
			return
		case p := <-r.kick:
			delete(r.next, p)
			delete(r.backoff, p)
			r.attempt(p)
		case <-r.all:
			clear(r.next)
			clear(r.backoff)
			r.due(true)
		case res := <-r.results:
			r.finished(res)
		case <-tick.C:
			r.due(false)
		}
	}
}

// due attempts every peer with work whose back-off has passed, and every
// peer whose failed attempt is due again. With final, it also looks for
// finished transfers whose peer still has to be told.
func (r *retrier) due(final bool) {
	peers, err := r.s.peersWithWork(final)
	if err != nil {
		if r.s.ctx.Err() == nil {
			r.s.log.Warn("list transfers", "err", err)
		}
		return
	}
	for p := range r.next {
		peers[p] = true
	}
	now := time.Now()
	for p := range peers {
		if !r.inflight[p] && now.After(r.next[p]) {
			r.attempt(p)
		}
	}
}

// attempt starts one attempt of p's work, or, when one runs, asks for
// another after it.
func (r *retrier) attempt(p peer.ID) {
	if r.inflight[p] {
		r.again[p] = true
		return
	}
	r.inflight[p] = true
	ok := r.s.goTask(func() {
		err := r.s.attemptPeer(r.s.ctx, p)
		select {
		case r.results <- attemptResult{p, err}:
		case <-r.s.ctx.Done():
		}
	})
	if !ok {
		delete(r.inflight, p)
	}
}

// finished takes an attempt's result: it schedules p's next attempt, and
// starts it at once when p was kicked meanwhile.
func (r *retrier) finished(res attemptResult) {
	delete(r.inflight, res.p)
	r.schedule(res)
	if r.again[res.p] {
		delete(r.again, res.p)
		r.attempt(res.p)
	}
}

// schedule records an attempt's outcome: success resets p's back-off; a
// failure doubles it.
func (r *retrier) schedule(res attemptResult) {
	if res.err == nil {
		delete(r.next, res.p)
		delete(r.backoff, res.p)
		return
	}
	d := min(max(2*r.backoff[res.p], r.s.cfg.RetryMin), r.s.cfg.RetryMax)
	r.backoff[res.p] = d
	r.next[res.p] = time.Now().Add(d + time.Duration(rand.Int64N(int64(d)/4+1)))
	r.s.log.Debug("transfer work failed, will retry", "peer", res.p, "in", d, "err", res.err)
}

// Kick retries at once what waits for p: offers to deliver, transfers to
// resume. Call it when p connects.
func (s *Service) Kick(p peer.ID) {
	select {
	case s.retry.kick <- p:
	default: // the retrier is busy; its next pass gets to p
	}
}

// RetryAll retries everything waiting, for every peer (for example after the
// node rejoined the network).
func (s *Service) RetryAll() {
	select {
	case s.retry.all <- struct{}{}:
	default: // a retry of everything is already pending
	}
}

// watchPeers kicks the work of every peer that connects.
func (s *Service) watchPeers(sub event.Subscription) {
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

// peersWithWork lists the peers something waits for.
func (s *Service) peersWithWork(final bool) (map[peer.ID]bool, error) {
	ts, err := s.store.Transfers(s.ctx, Filter{States: []State{StateOffered, StateActive, StatePaused}})
	if err != nil {
		return nil, err
	}
	if final {
		done, err := s.store.Transfers(s.ctx, Filter{Direction: In, States: []State{StateDone, StateRejected, StateFailed}})
		if err != nil {
			return nil, err
		}
		ts = append(ts, done...)
	}
	peers := make(map[peer.ID]bool)
	for _, t := range ts {
		if needsWork(t) {
			peers[t.Peer] = true
		}
	}
	return peers, nil
}

// needsWork says whether the retrier has something to do for t.
func needsWork(t Transfer) bool {
	switch {
	case t.Direction == Out && t.Ticket:
		return false // served on request; nobody to reach
	case t.Direction == Out && t.State == StateOffered:
		return !t.Notified
	case t.Direction == Out:
		return t.State == StateActive
	case t.State == StateOffered:
		return false // waits for the user
	case t.State.Final():
		return !t.Notified
	default:
		return true
	}
}

// attemptPeer does everything that waits for p, one thing after another,
// and returns the first failure (the rest is retried with it).
func (s *Service) attemptPeer(ctx context.Context, p peer.ID) error {
	ts, err := s.store.Transfers(ctx, Filter{Peer: p})
	if err != nil {
		return err
	}
	var errs []error
	connect := false
	for i := len(ts) - 1; i >= 0; i-- { // oldest first
		t := ts[i]
		if !needsWork(t) {
			continue
		}
		switch {
		case t.Direction == Out && t.State == StateOffered:
			errs = append(errs, s.deliverOffer(ctx, t))
		case t.Direction == Out:
			connect = true
		case t.State == StateRejected || t.State == StateFailed:
			errs = append(errs, s.sendReject(ctx, t))
		default:
			errs = append(errs, s.fetchTransfer(ctx, t.ID))
		}
	}
	if connect {
		// The receiver drives a transfer: being connected is enough for it
		// to resume (it retries when we connect).
		errs = append(errs, s.h.Connect(network.WithAllowLimitedConn(ctx, "files"), peer.AddrInfo{ID: p}))
	}
	return errors.Join(errs...)
}

// remoteRefusal reports whether err is the peer's coded refusal, and which.
func remoteRefusal(err error) (*protocols.RemoteError, bool) {
	var re *protocols.RemoteError
	ok := errors.As(err, &re)
	return re, ok
}
