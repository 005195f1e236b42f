package chat

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
)

// joinState returns room's floor (RoomStore.RoomFloor) and whether it is
// new to us: we hold nothing of it and took nothing of it before, or we
// began to take its recent past and were stopped before it came (live
// messages may have come by then). A room new to us is marked joining in
// the store until joinHistory ends the taking.
func (s *RoomService) joinState(room string) (floor int64, joining bool, err error) {
	if floor, err = s.store.RoomFloor(s.ctx, room); err != nil {
		return 0, false, err
	}
	if joining, err = s.store.RoomJoining(s.ctx, room); err != nil || joining {
		return floor, joining, err
	}
	if floor != 0 {
		return floor, false, nil
	}
	held, err := s.store.RoomMessages(s.ctx, RoomFilter{Room: room, Limit: 1, Oldest: true})
	if err != nil || len(held) > 0 {
		return floor, false, err
	}
	return floor, true, s.store.SetRoomJoining(s.ctx, room, true)
}

// subscribe joins r's topic with its validator and starts its reader.
func (s *RoomService) subscribe(r Room) error {
	j := &joined{Room: r, done: make(chan struct{}), republished: make(chan struct{}), hist: newHistory(), reann: newReannouncer(),
		held:   newHeldBelow(),
		self:   rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst),
		limits: &limiters{rate: rate.Limit(s.cfg.Rate), burst: s.cfg.receiveBurst(), m: map[peer.ID]*rate.Limiter{}}}
	// A room we hold nothing of, and took nothing of before, is new to us:
	// the history client takes its recent past only (joinHistory). So is
	// one whose recent past we began to take and were stopped before it
	// came, though live messages may have come by then.
	floor, joining, err := s.joinState(r.Name)
	if err != nil {
		return fmt.Errorf("chat: join room %q: %w", r.Name, err)
	}
	j.hist.floor.Store(floor)
	j.hist.joining.Store(joining)
	if err := s.ps.RegisterTopicValidator(r.Topic, s.validator(j), pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("chat: room %q validator: %w", r.Name, err)
	}
	t, err := s.ps.Join(r.Topic)
	if err == nil {
		if err = t.SetScoreParams(RoomTopicScoreParams()); err == nil {
			j.sub, err = t.Subscribe(pubsub.WithBufferSize(roomSubBuffer))
		}
	}
	if err != nil {
		if t != nil {
			t.Close()
		}
		s.ps.UnregisterTopicValidator(r.Topic)
		return fmt.Errorf("chat: join room %q: %w", r.Name, err)
	}
	j.topic = t
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		j.sub.Cancel()
		t.Close()
		s.ps.UnregisterTopicValidator(r.Topic)
		return ErrClosed
	}
	var ctx context.Context
	ctx, j.cancel = context.WithCancel(s.ctx)
	s.rooms[r.Name] = j
	s.wg.Go(func() { defer close(j.done); s.read(ctx, j) })
	s.wg.Go(func() { defer close(j.republished); s.republish(ctx, j) })
	s.wg.Go(func() { s.historyLoop(ctx, j) })
	s.discover(ctx, j)
	s.log.Info("joined room", "room", r.Name, "private", r.Private())
	return nil
}

// ErrClosed: the service is closed.
var ErrClosed = errors.New("chat: room service closed")

// unsubscribe stops j's goroutines and leaves its topic.
func (s *RoomService) unsubscribe(j *joined) {
	j.cancel()
	j.cancelSubscription()
	<-j.done
	<-j.republished
	<-j.hist.done
	s.undiscover(j)
	if err := j.topic.Close(); err != nil {
		// The topic stays joined in pubsub, and joining the room again fails.
		s.log.Warn("close room topic", "room", j.Name, "err", err)
	}
	s.ps.UnregisterTopicValidator(j.Topic)
}

// validator checks every message on j's topic before pubsub delivers or
// forwards it; RoomService's documentation says what it rejects and why.
func (s *RoomService) validator(j *joined) pubsub.ValidatorEx {
	return func(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		m, err := protocols.DecodeRoomPayload(msg.Data, j.Name, j.Key, j.Topic)
		if err != nil {
			s.log.Debug("rejected", "room", j.Name, "from", msg.ReceivedFrom, "err", err)
			return pubsub.ValidationReject
		}
		msg.ValidatorData = m
		if msg.ReceivedFrom == s.h.ID() {
			// Our own, being published: Send stored it; record its signed
			// form, which pubsub has just made, so that history can hand it
			// on. Failing that, it is not published now, and is again when
			// the room is next joined.
			if err := s.signed(ctx, j, msg, m); err != nil {
				s.log.Warn("record own room message", "room", j.Name, "err", err)
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationAccept
		}
		author := msg.GetFrom()
		may, err := j.held.mayHold(ctx, s.store, j.Name, author, m.Seq)
		if err != nil {
			return pubsub.ValidationIgnore // no store: cannot tell
		}
		if may {
			if held, err := s.store.HasRoomMessage(ctx, j.Name, author, m.Seq); err != nil || held {
				return pubsub.ValidationIgnore // a replay (or no store: cannot tell)
			}
		}
		if !j.limits.allow(author) {
			s.log.Debug("over rate", "room", j.Name, "author", author)
			return s.penalise(msg)
		}
		// A clock more than protocols.MaxRoomClockLead ahead is dropped
		// but not penalised: an honest colleague's clock may be that wrong,
		// and a member whose clock is ahead of ours rightly took it; its
		// peer score must not suffer for it (its messages still count
		// against its rate above).
		if err := m.CheckTime(s.now()); err != nil {
			s.log.Debug("clock too far ahead", "room", j.Name, "author", author, "err", err)
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationAccept
	}
}

// read stores what j's subscription delivers until ctx ends. When we
// re-announce, it reads what the old subscription held, then the new one.
func (s *RoomService) read(ctx context.Context, j *joined) {
	sub := j.subscription()
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			if next := j.subscription(); ctx.Err() == nil && next != sub {
				sub = next
				continue
			}
			return
		}
		m, ok := msg.ValidatorData.(protocols.RoomMessage)
		if !ok || msg.GetFrom() == s.h.ID() {
			continue
		}
		if err := s.receive(ctx, j, msg, m); err != nil && ctx.Err() == nil {
			s.log.Warn("store room message", "room", j.Name, "err", err)
		}
	}
}

// receive stores one validated message and reports it, and the gap before
// it if there is one.
func (s *RoomService) receive(ctx context.Context, j *joined, msg *pubsub.Message, m protocols.RoomMessage) error {
	author := msg.GetFrom()
	hw, err := s.store.HighWater(ctx, j.Name, author)
	if err != nil {
		return err
	}
	raw, err := proto.Marshal(msg.Message)
	if err != nil {
		return err
	}
	rm := RoomMessage{ID: messageID(msg), Room: j.Name, Author: author, Seq: m.Seq, Clock: m.Clock, SentAt: m.SentAt,
		ReceivedAt: s.now().UTC(), Text: m.Text, Raw: raw}
	j.held.raise(author, m.Seq)
	added, err := s.store.AddRoomMessage(ctx, rm)
	if err != nil || !added {
		return err
	}
	if m.Seq > hw+1 && !j.hist.beforeJoin(hw) {
		s.notify(RoomEvent{Room: j.Name, Gap: &Gap{Author: author, From: hw + 1, To: m.Seq - 1}})
		s.wantRepair(j, msg.ReceivedFrom)
	}
	s.notify(RoomEvent{Room: j.Name, Message: &rm})
	return nil
}

// signed records the ID and signed form of our own message msg.
func (s *RoomService) signed(ctx context.Context, j *joined, msg *pubsub.Message, m protocols.RoomMessage) error {
	raw, err := proto.Marshal(msg.Message)
	if err != nil {
		return err
	}
	id := messageID(msg)
	if err := s.store.SetRoomMessageSigned(ctx, j.Name, s.h.ID(), m.Seq, id, raw); err != nil {
		return err
	}
	j.signedID, j.signedRaw = id, raw // read by publish, which holds j.send
	return nil
}

// messageID is RoomMessage.ID of msg: its pubsub ID (RoomMessageID), cut
// to 16 bytes, in hex.
func messageID(msg *pubsub.Message) string {
	id := msg.ID
	if id == "" {
		id = RoomMessageID(msg.Message)
	}
	return hex.EncodeToString([]byte(id)[:16])
}

// limiters holds a token bucket per author.
type limiters struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[peer.ID]*rate.Limiter
	added int              // buckets made
	now   func() time.Time // time.Now if nil (tests set it)
}

// maxLimiters bounds the buckets kept; past it, the fullest go (a full
// bucket is what a new one would be).
const maxLimiters = 4096

// sweepLimiters: every that many new buckets, the full ones go. A full
// bucket is what a new one would be, so forgetting it changes nothing, and
// the authors that left (in a room with churn, every author at some point)
// are not kept until maxLimiters is reached.
const sweepLimiters = 64

func (l *limiters) allow(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	b, ok := l.m[p]
	if !ok {
		if l.added++; l.added%sweepLimiters == 0 {
			maps.DeleteFunc(l.m, func(_ peer.ID, b *rate.Limiter) bool { return b.TokensAt(now) >= float64(l.burst) })
		}
		trim(l.m, maxLimiters, func(b *rate.Limiter) float64 { return -b.TokensAt(now) })
		b = rate.NewLimiter(l.rate, l.burst)
		l.m[p] = b
	}
	return b.AllowN(now, 1)
}
