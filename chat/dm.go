package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DMServiceName names the direct-message service in the resource manager.
const DMServiceName = "kith.dm"

// Errors of Send and of the Authorize function.
var (
	ErrEmpty      = errors.New("chat: empty message")
	ErrTooLong    = fmt.Errorf("chat: message longer than %d bytes", protocols.MaxDMText)
	ErrNotUTF8    = errors.New("chat: message is not valid UTF-8")
	ErrNotAllowed = errors.New("not allowed to message this node")
	ErrBlocked    = errors.New("blocked")
	ErrSelf       = errors.New("chat: cannot message yourself")
)

// DMConfig configures the direct-message service. The zero value is valid.
type DMConfig struct {
	// Authorize decides whether p may send us messages; nil admits everyone.
	// Return an error wrapping ErrNotAllowed or ErrBlocked to refuse.
	Authorize func(p peer.ID) error
	// FirstFrameTimeout bounds the wait for a stream's first frame (30 s).
	FirstFrameTimeout time.Duration
	// IdleTimeout bounds the wait for each later frame or ack (60 s).
	IdleTimeout time.Duration
	// SendTimeout bounds Send's attempt to deliver before it reports the
	// message queued (10 s).
	SendTimeout time.Duration
	// RetryMin and RetryMax bound the outbox's back-off per peer (1 s, 5 min).
	RetryMin, RetryMax time.Duration
	// StreamIdle is how long the stream to a peer stays open after the
	// last delivery on it, for the next one to reuse (15 s). Keep it well
	// below the receivers' IdleTimeout, after which they close the stream.
	StreamIdle time.Duration
}

func (c DMConfig) withDefaults() DMConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.FirstFrameTimeout, 30*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.SendTimeout, 10*time.Second)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.StreamIdle, 15*time.Second)
	return c
}

// DMOption injects what code chooses: a logger, a change listener, a clock.
type DMOption func(*DMService)

// WithDMClock sets the clock Send stamps sent_at with. Nothing else reads
// it: no clock orders, expires or refuses a direct message (the receiver
// keeps them in the order they arrive, which is the order sent, and keeps
// each ID of a sender once, for good).
func WithDMClock(now func() time.Time) DMOption { return func(s *DMService) { s.now = now } }

// WithLogger sets the service's logger.
func WithLogger(l *slog.Logger) DMOption { return func(s *DMService) { s.log = l } }

// WithOnChange registers f, called (from the service's goroutines) after a
// message is stored, or when an outgoing message is delivered.
func WithOnChange(f func(Message)) DMOption { return func(s *DMService) { s.onChange = f } }

// DMService sends and receives direct messages over /kith/dm/1.0.0 and keeps
// the outbox moving.
type DMService struct {
	h        host.Host
	store    Store
	cfg      DMConfig
	log      *slog.Logger
	onChange func(Message)
	now      func() time.Time

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	kick     chan peer.ID  // a peer to retry at once (connected, or new mail)
	retryAll chan struct{} // retry every peer at once

	sendLocks peerLocks    // one delivery at a time per peer
	streams   *streamCache // the stream kept open to each peer between deliveries
	waiting   sync.Map     // MessageID -> *waiter: the messages Sends wait on

	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
}

// NewDM starts the service: it handles incoming streams and delivers the
// outbox in the background until Close.
func NewDM(h host.Host, store Store, cfg DMConfig, opts ...DMOption) (*DMService, error) {
	s := &DMService{
		h: h, store: store, cfg: cfg.withDefaults(),
		log: slog.Default(), now: time.Now,
		kick: make(chan peer.ID, 64), retryAll: make(chan struct{}, 1),
	}
	s.streams = newStreamCache(s.cfg.StreamIdle)
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "chat.dm")
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, fmt.Errorf("chat: subscribe to peer events: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(protocols.DMProtocol, s.handle)
	s.wg.Go(func() { s.watchPeers(sub) })
	s.wg.Go(s.runOutbox)
	s.wg.Go(s.closeIdleStreams)
	return s, nil
}

// Close stops handling streams, stops the outbox, closes the streams kept
// for reuse and waits for every goroutine the service started. It is safe to
// call more than once.
func (s *DMService) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(protocols.DMProtocol)
	s.cancel()
	for _, o := range s.streams.close() {
		o.st.Close()
	}
	s.wg.Wait()
	return nil
}

// enter registers a stream handler with the WaitGroup unless the service
// is closing.
func (s *DMService) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// CheckText says whether text can be sent as a direct message.
func CheckText(text string) error {
	switch {
	case text == "":
		return ErrEmpty
	case len(text) > protocols.MaxDMText:
		return ErrTooLong
	case !utf8.ValidString(text):
		return ErrNotUTF8
	}
	return nil
}

// Send stores text for p and tries to deliver it for up to SendTimeout. The
// returned message is StateDelivered when p acked it, StateQueued when p
// could not be reached (the outbox keeps trying). A refusal by p (not a
// contact, blocked) is returned as a *protocols.RemoteError and the message
// leaves the outbox (StateFailed when it was this message that p refused).
// The delivery that carries the message may be another's (a concurrent
// Send's, the outbox's): Send reports what became of the message either way.
func (s *DMService) Send(ctx context.Context, p peer.ID, text string) (Message, error) {
	if err := CheckText(text); err != nil {
		return Message{}, err
	}
	if p == s.h.ID() {
		return Message{}, ErrSelf
	}
	m := Message{ID: NewMessageID(), Peer: p, Out: true, Text: text,
		SentAt: s.now().UTC().Truncate(time.Millisecond), State: StateQueued}
	// Wait on the message before it is in the outbox, where any delivery to
	// p may take it.
	w := &waiter{settled: make(chan struct{})}
	s.waiting.Store(m.ID, w)
	defer s.waiting.Delete(m.ID)
	if err := s.store.AddOutgoing(ctx, m); err != nil {
		return Message{}, fmt.Errorf("chat: store outgoing: %w", err)
	}
	s.notify(m)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	err := s.deliverPeer(ctx, p, w.settled)
	select {
	case <-w.settled:
		m.State = w.outcome.state
		return m, w.outcome.err
	default:
	}
	var re *protocols.RemoteError
	if errors.As(err, &re) {
		return m, err
	}
	s.log.Debug("queued", "peer", p, "id", m.ID, "err", err)
	return m, nil
}

// outcome is what a delivery made of an outgoing message.
type outcome struct {
	state State // StateDelivered or StateFailed
	err   error // the receiver's refusal, when StateFailed
}

// waiter is a Send's wait for its message.
type waiter struct {
	settled chan struct{} // closed when outcome is set
	outcome outcome
}

// settle tells the Send waiting on id, if any, what became of its message.
func (s *DMService) settle(id MessageID, o outcome) {
	if w, ok := s.waiting.LoadAndDelete(id); ok {
		w := w.(*waiter)
		w.outcome = o
		close(w.settled)
	}
}

func (s *DMService) notify(m Message) {
	if s.onChange != nil {
		s.onChange(m)
	}
}
