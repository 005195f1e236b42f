package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ServiceName is the resource manager service name of the files protocol.
const ServiceName = "kith.files"

// Errors of the Service's methods and of the Authorize function.
var (
	ErrNotAllowed  = errors.New("not allowed to send files to this node")
	ErrBlocked     = errors.New("blocked")
	ErrSelf        = errors.New("files: cannot send files to yourself")
	ErrNotOffered  = errors.New("files: the transfer is not waiting for an answer")
	ErrLimitedPath = errors.New("files: only a limited relay path to the peer exists")
	ErrClosed      = errors.New("files: service closed")
	ErrNoDir       = errors.New("files: no folder to receive into")
)

// Config configures the files service. The zero value is valid.
type Config struct {
	// Authorize decides whether p may offer us files; nil admits everyone.
	// Return an error wrapping ErrNotAllowed or ErrBlocked to refuse. It is
	// not asked about ticket fetches: the ticket's secret authorizes those.
	Authorize func(p peer.ID) error
	// AutoAccept says where an offer from p is accepted without asking, if
	// anywhere: ok false leaves the offer waiting for Accept or Reject.
	AutoAccept func(p peer.ID) (dir string, ok bool)
	// WaitDirect bounds the wait for a direct connection when the only
	// connection to the peer is a relayed one too limited for the transfer
	// (30 s); then the transfer pauses with ErrLimitedPath.
	WaitDirect time.Duration
	// Window is how many chunk bytes a receiver keeps requested and not yet
	// verified (16 MiB).
	Window int
	// MaxPendingOffers bounds the offers waiting for an answer, per peer (16).
	MaxPendingOffers int
	// OfferBurst and OfferRate bound how fast a peer may offer, whatever
	// becomes of its offers: OfferBurst offers at once, then OfferRate a
	// second (16, 2). An offer past them is answered RATE_LIMITED before
	// its manifest is parsed; kith's sender retries it with back-off.
	OfferBurst int
	OfferRate  float64
	// FrameTimeout bounds each read and write of a frame or chunk (30 s).
	FrameTimeout time.Duration
	// JournalEvery is how often a receiver syncs what it wrote and records
	// the chunks as verified in the store (500 ms); a fast transfer also
	// does so after every 32 MiB verified.
	JournalEvery time.Duration
	// RetryMin and RetryMax bound the back-off of offer delivery and of
	// resuming transfers, per peer (1 s, 2 min).
	RetryMin, RetryMax time.Duration
	// YieldDelay is how much queueing delay a transfer being served may
	// add to its connection before it slows down, so that messages on the
	// same connection do not wait behind its chunks (200 ms; see yield.go).
	// Negative: never slow down.
	YieldDelay time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.WaitDirect, 30*time.Second)
	def(&c.FrameTimeout, 30*time.Second)
	def(&c.JournalEvery, 500*time.Millisecond)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, 2*time.Minute)
	if c.YieldDelay == 0 {
		c.YieldDelay = 200 * time.Millisecond
	}
	if c.Window < protocols.ChunkSize {
		c.Window = 16 << 20
	}
	if c.MaxPendingOffers <= 0 {
		c.MaxPendingOffers = 16
	}
	if c.OfferBurst <= 0 {
		c.OfferBurst = 16
	}
	if c.OfferRate <= 0 {
		c.OfferRate = 2
	}
	return c
}

// EventKind names what an Event reports.
type EventKind string

// Event kinds.
const (
	EventOffer    EventKind = "offer"    // an incoming offer waits for an answer
	EventState    EventKind = "state"    // a transfer changed state (or path)
	EventProgress EventKind = "progress" // bytes were verified (at most a few per second per transfer)
)

// Event reports a change to a transfer. Transfer is the listing form
// (Manifest and Verified left out).
type Event struct {
	Kind     EventKind
	Transfer Transfer
	Rate     float64 // bytes per second over the last few seconds (progress)
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the service's logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithOnEvent sets a function called for every Event. It must not block.
func WithOnEvent(f func(Event)) Option { return func(s *Service) { s.onEvent = f } }

// WithClock sets the clock the per-peer offer limits run on (time.Now).
// No clock of a peer's reaches the files protocol: offers, fetches and
// tickets carry no time, and nothing a peer sends expires.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// Service runs /kith/files/1.0.0 on a host: it offers, serves, fetches,
// verifies and resumes transfers kept in a Store.
type Service struct {
	h       host.Host
	store   Store
	cfg     Config
	log     *slog.Logger
	onEvent func(Event)
	now     func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed, wg.Add against Close, and the maps below
	closed bool

	sources map[TransferID]*Source            // outgoing transfers' sources, opened once
	shares  map[protocols.Hash][]TransferID   // ticket transfers being served, by content ID
	keep    map[TransferID]bool               // shares that serve on after a completed fetch
	runs    map[TransferID]context.CancelFunc // incoming transfers being fetched
	rates   map[TransferID]*rateMeter         // progress throttling and rates
	yields  map[network.Conn]*connYield       // connections carrying transfers we serve, paced

	retry *retrier
	sent  atomic.Int64 // chunk bytes served, for tests and metrics

	// offerMu makes storeOffer's count of waiting offers and its insert one
	// step: offers arrive on concurrent streams, and counting apart from
	// inserting let 8 streams of one peer store 23 offers past a cap of 16
	// (TestOfferStormFromOnePeer in node).
	offerMu sync.Mutex
	offers  *offerLimits // per-peer token buckets of incoming offers (L7)

	sinkHook func(*Sink) // tests: adjusts each sink a fetch opens
}

// New starts the files service on h: it registers the protocol handler and
// resumes the stored transfers that are not final.
func New(h host.Host, store Store, cfg Config, opts ...Option) (*Service, error) {
	s := &Service{
		h: h, store: store, cfg: cfg.withDefaults(), log: slog.Default(),
		sources: make(map[TransferID]*Source), shares: make(map[protocols.Hash][]TransferID),
		keep: make(map[TransferID]bool), runs: make(map[TransferID]context.CancelFunc),
		rates: make(map[TransferID]*rateMeter), now: time.Now, yields: make(map[network.Conn]*connYield),
	}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "files")
	s.offers = newOfferLimits(s.cfg.OfferRate, s.cfg.OfferBurst, s.now)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.loadShares(); err != nil {
		s.cancel()
		return nil, err
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("files: subscribe to peer events: %w", err)
	}
	s.retry = newRetrier(s)
	h.SetStreamHandler(protocols.FilesProtocol, s.handle)
	s.wg.Go(func() { s.watchPeers(sub) })
	s.wg.Go(s.retry.run)
	return s, nil
}

// loadShares indexes the stored ticket transfers still being served.
func (s *Service) loadShares() error {
	ts, err := s.store.Transfers(s.ctx, Filter{Direction: Out, States: []State{StateOffered, StateActive}})
	if err != nil {
		return fmt.Errorf("files: list transfers: %w", err)
	}
	for _, t := range ts {
		if t.Ticket {
			s.shares[t.ContentID] = append(s.shares[t.ContentID], t.ID)
		}
	}
	return nil
}

// Close stops the service: it removes the handler, stops every transfer
// (each stays resumable) and waits for them. It is safe to call twice.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(protocols.FilesProtocol)
	s.cancel()
	s.wg.Wait()
	return nil
}

// enter registers a goroutine with the WaitGroup unless the service is
// closing.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goTask runs f in a goroutine the service waits for on Close.
func (s *Service) goTask(f func()) bool {
	if !s.enter() {
		return false
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// Transfer returns one stored transfer.
func (s *Service) Transfer(ctx context.Context, id TransferID) (Transfer, error) {
	return s.store.Transfer(ctx, id)
}

// Transfers lists stored transfers, newest first.
func (s *Service) Transfers(ctx context.Context, f Filter) ([]Transfer, error) {
	return s.store.Transfers(ctx, f)
}

// update changes a stored transfer and reports the change as an event of
// kind k. It returns the transfer as stored after the change.
func (s *Service) update(id TransferID, u Update, k EventKind) (Transfer, error) {
	ctx := context.WithoutCancel(s.ctx)
	if err := s.store.UpdateTransfer(ctx, id, u); err != nil {
		return Transfer{}, err
	}
	t, err := s.store.Transfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if t.Direction == Out && t.State.Final() {
		s.forgetOutgoing(t)
	}
	s.emit(k, t, 0)
	return t, nil
}

// forgetOutgoing drops what the service holds to serve t, an outgoing
// transfer that is over: its source (the manifest, kept from the offer on)
// and its rate meter. Only a completion and a cancel dropped them: those
// of every offer declined or refused, and of every transfer the receiver
// cancelled, stayed for good.
func (s *Service) forgetOutgoing(t Transfer) {
	s.mu.Lock()
	s.dropShare(t)
	s.mu.Unlock()
	s.forgetMeter(t.ID)
}

// setState moves a transfer to state st with a reason (empty clears it).
func (s *Service) setState(id TransferID, st State, reason string) (Transfer, error) {
	return s.update(id, Update{State: &st, Error: &reason}, EventState)
}

// emit reports an event, in listing form.
func (s *Service) emit(k EventKind, t Transfer, rate float64) {
	if s.onEvent == nil {
		return
	}
	t.Manifest, t.Verified, t.Secret = nil, nil, nil
	s.onEvent(Event{Kind: k, Transfer: t, Rate: rate})
}

// SentBytes counts the chunk bytes the service has served since it started,
// chunks sent again included (for metrics and benchmarks).
func (s *Service) SentBytes() int64 { return s.sent.Load() }
