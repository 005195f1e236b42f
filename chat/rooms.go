package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"golang.org/x/time/rate"
)

// Errors of the room service.
var (
	ErrNotJoined     = errors.New("chat: not a member of this room")
	ErrRoomText      = fmt.Errorf("chat: room message longer than %d bytes or not UTF-8", protocols.MaxRoomText)
	ErrRoomKeyChange = errors.New("chat: already a member of this room with another secret")
)

// RoomConfig configures the room service. The zero value is valid.
type RoomConfig struct {
	// Rate and Burst bound the messages we send in one room: Send waits on
	// a token bucket of Burst tokens refilled at Rate per second (20 and
	// 40). A member accepts from one author what that bucket lets through
	// plus RateSlack of delivery jitter (Burst + Rate × RateSlack tokens,
	// 80 by default), so that it never drops or penalises an honest
	// author's messages that queues delayed and then delivered together.
	Rate  float64
	Burst int
	// HistoryFirstFrame bounds the wait for the first frame of a
	// /kith/history/1.0.0 stream, the request or the first answer (30 s);
	// HistoryIdle each later one (60 s). Tests shorten them.
	HistoryFirstFrame time.Duration
	HistoryIdle       time.Duration
	// HistoryRetryMax caps the back-off between history rounds that no
	// member answered (1 minute); it doubles from 1 s. Tests shorten it.
	HistoryRetryMax time.Duration
	// HistoryOnJoin is how many of a room's newest messages a member takes
	// when it joins the room (500): what was said before them is not
	// fetched, then or later, and holes before them are not gaps. A member
	// that held the room's messages before keeps asking for everything it
	// lacks.
	HistoryOnJoin int
}

// RateSlack is the delivery jitter a member's per-author bucket allows for
// (see RoomConfig). Under overload an honest author's messages reach a
// member's validator bunched: they wait in the author's and forwarders'
// outbound queues and in the member's validation queue (1024 messages),
// and leave it at the pace of one worker. With a bucket no larger than the
// author's own, a 10-member room sending 1000 msg/s had members count tens
// of such messages per author as over the rate, penalise honest authors
// onto the graylist and stop hearing them, and everyone they forwarded, for
// minutes (TestSoakRoomOverload, build tag soak).
const RateSlack = 2 * time.Second

// receiveBurst is the burst of a member's per-author bucket.
func (c RoomConfig) receiveBurst() int {
	return c.Burst + int(math.Ceil(c.Rate*RateSlack.Seconds()))
}

func (c RoomConfig) withDefaults() RoomConfig {
	if c.Rate <= 0 {
		c.Rate = 20
	}
	if c.Burst <= 0 {
		c.Burst = 40
	}
	if c.HistoryFirstFrame <= 0 {
		c.HistoryFirstFrame = historyFirstFrame
	}
	if c.HistoryIdle <= 0 {
		c.HistoryIdle = historyIdle
	}
	if c.HistoryRetryMax <= 0 {
		c.HistoryRetryMax = historyRetryMax
	}
	if c.HistoryOnJoin <= 0 {
		c.HistoryOnJoin = historyOnJoin
	}
	return c
}

// RoomEvent is what the service reports: a message stored (ours or
// received), or a gap seen. Exactly one of Message and Gap is set.
type RoomEvent struct {
	Room    string
	Message *RoomMessage
	Gap     *Gap
	// Backfilled says that Message came from a member's history
	// (/kith/history/1.0.0: backfill after joining, or a gap repaired),
	// not live from the topic: it may be old, and a UI shows it in its
	// place in RoomOrder rather than as new.
	Backfilled bool
}

// RoomOption injects what code chooses: a logger, an event listener, a clock.
type RoomOption func(*RoomService)

// WithRoomLogger sets the service's logger.
func WithRoomLogger(l *slog.Logger) RoomOption { return func(s *RoomService) { s.log = l } }

// WithRoomEvents registers f, called (from the service's goroutines) for
// every RoomEvent. Within a room, messages received live are reported in
// the order they arrived, and those history brings (Backfilled) in room
// order; the two streams may interleave.
func WithRoomEvents(f func(RoomEvent)) RoomOption { return func(s *RoomService) { s.onEvent = f } }

// WithRoomClock sets the service's clock: what Send states as sent_at and
// stamps clocks from, and what the validator and history check clocks
// against.
func WithRoomClock(now func() time.Time) RoomOption { return func(s *RoomService) { s.now = now } }

// RoomService runs group rooms over GossipSub: it joins topics, validates
// what arrives, stores it and publishes what we send.
//
// The validator rejects (and so lowers the score of the peer that sent it
// to us) only what no honest forwarder passes on: a payload that is too
// large, does not open with the room's key or does not decode. A message
// whose clock is too far ahead (protocols.MaxRoomClockLead) or that is over
// its author's rate limit is ignored,
// since another member's clock or bucket may rightly have judged it valid
// and forwarded it, and pubsub would count every later copy of a rejected
// message against its forwarder; when the author itself sent us a message
// over its rate, the author is penalised instead (PenaltyWeight), but not
// for its clock. A replay of a message we hold is ignored.
type RoomService struct {
	h       host.Host
	ps      *pubsub.PubSub
	store   RoomStore
	cfg     RoomConfig
	log     *slog.Logger
	onEvent func(RoomEvent)
	now     func() time.Time
	rdv     rendezvous // rooms_discover.go

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pen    *penalties // what ps's peer score reads (NewPubSub)
	joinMu sync.Mutex // serialises Join and Leave
	mu     sync.Mutex
	rooms  map[string]*joined
	closed bool
}

// joined is a room we are subscribed to.
type joined struct {
	Room
	topic *pubsub.Topic
	// sub is replaced when we re-announce our subscription
	// (rooms_reannounce.go): read it under subMu, or with subscription.
	subMu  sync.Mutex
	sub    *pubsub.Subscription
	reann  *reannouncer
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has stopped
	// republished is closed when the republishing at join has ended.
	republished chan struct{}
	send        sync.Mutex    // one Send at a time: seqs are taken in order
	self        *rate.Limiter // our own sending rate
	// Under send: the clock our last message stamped (0: not read from the
	// store yet), and the signed form of the message being published (set
	// by the validator).
	lastClock int64
	signedID  string
	signedRaw []byte
	limits    *limiters  // per-author rates of what we receive
	hist      *history   // the history client's state
	held      *heldBelow // what the validator need not look up
}

// NewRooms starts the service and joins the rooms store holds.
func NewRooms(h host.Host, ps *PubSub, store RoomStore, cfg RoomConfig, opts ...RoomOption) (*RoomService, error) {
	s := &RoomService{h: h, ps: ps.PubSub, pen: ps.pen, store: store, cfg: cfg.withDefaults(),
		log: slog.Default(), now: time.Now, rooms: make(map[string]*joined)}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "chat.rooms")
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(protocols.HistoryProtocol, s.serveHistory)
	rooms, err := store.Rooms(s.ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("chat: load rooms: %w", err)
	}
	for _, r := range rooms {
		if err := s.subscribe(r); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close leaves every topic (the rooms stay stored) and waits for the
// service's goroutines. It is safe to call more than once.
func (s *RoomService) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = nil
	s.mu.Unlock()
	s.h.RemoveStreamHandler(protocols.HistoryProtocol)
	s.cancel()
	for _, j := range rooms {
		s.unsubscribe(j)
	}
	s.wg.Wait()
	return nil
}

// Join joins room name: an open room when secret is nil, a private one
// otherwise (deriving its key takes about 0.4 s). Joining a room we are in
// with the same secret returns it and added false; with another secret,
// ErrRoomKeyChange. added is true only for the call that joined.
func (s *RoomService) Join(ctx context.Context, name string, secret []byte) (r Room, added bool, err error) {
	r = Room{Name: name, JoinedAt: s.now().UTC()}
	if secret != nil {
		k, err := protocols.DeriveRoomKey(name, secret)
		if err != nil {
			return Room{}, false, fmt.Errorf("chat: join %q: %w", name, err)
		}
		r.Key = k
	}
	topic, err := protocols.RoomTopic(name, r.Key)
	if err != nil {
		return Room{}, false, fmt.Errorf("chat: join %q: %w", name, err)
	}
	r.Topic = topic
	s.joinMu.Lock() // one Join or Leave at a time: a room is subscribed once
	defer s.joinMu.Unlock()
	s.mu.Lock()
	j, ok := s.rooms[name]
	s.mu.Unlock()
	if ok {
		if j.Topic != topic {
			return Room{}, false, ErrRoomKeyChange
		}
		return j.Room, false, nil
	}
	if err := s.store.SaveRoom(ctx, r); err != nil {
		return Room{}, false, fmt.Errorf("chat: store room %q: %w", name, err)
	}
	if err := s.subscribe(r); err != nil {
		return Room{}, false, err
	}
	return r, true, nil
}

// Leave unsubscribes from room name and forgets it (its messages stay).
func (s *RoomService) Leave(ctx context.Context, name string) error {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	s.mu.Lock()
	j, ok := s.rooms[name]
	delete(s.rooms, name)
	s.mu.Unlock()
	if !ok {
		return ErrNotJoined
	}
	s.unsubscribe(j)
	if err := s.store.DeleteRoom(ctx, name); err != nil {
		return fmt.Errorf("chat: forget room %q: %w", name, err)
	}
	s.log.Info("left room", "room", name)
	return nil
}

// Rooms returns the rooms we are in.
func (s *RoomService) Rooms(ctx context.Context) ([]Room, error) { return s.store.Rooms(ctx) }

// Messages returns a room's stored messages (f.Room is set to room).
func (s *RoomService) Messages(ctx context.Context, room string, f RoomFilter) ([]RoomMessage, error) {
	f.Room = room
	return s.store.RoomMessages(ctx, f)
}

// Gaps returns the ranges of seqs missing in a room, by author: not those
// before what we took, or are taking, when we joined it
// (RoomConfig.HistoryOnJoin).
func (s *RoomService) Gaps(ctx context.Context, room string) ([]Gap, error) {
	gaps, err := s.store.RoomGaps(ctx, room)
	if err != nil {
		return nil, err
	}
	floor, err := s.store.RoomFloor(ctx, room)
	if err != nil {
		return nil, err
	}
	joining, err := s.store.RoomJoining(ctx, room)
	if err != nil {
		return nil, err
	}
	return wantedGaps(gaps, floor > 0 || joining), nil
}

// Topic returns the pubsub topic of a room we are in (for peers lists and
// tests).
func (s *RoomService) Topic(room string) (*pubsub.Topic, error) {
	j, err := s.room(room)
	if err != nil {
		return nil, err
	}
	return j.topic, nil
}

func (s *RoomService) room(name string) (*joined, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.rooms[name]
	if !ok {
		return nil, ErrNotJoined
	}
	return j, nil
}

func (s *RoomService) notify(e RoomEvent) {
	if s.onEvent != nil {
		s.onEvent(e)
	}
}
