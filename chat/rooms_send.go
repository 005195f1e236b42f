package chat

import (
	"context"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Send stores text as our next message in room and publishes it, stamped
// with our clock as sent_at and with the room's next clock (nextClock). It
// waits while we are over our own rate (back-pressure, never silent loss). The
// message is stored, with its seq, before it is published: a seq is never
// used twice, even across a crash. When publishing fails the message stays
// stored and the error is returned.
func (s *RoomService) Send(ctx context.Context, room, text string) (RoomMessage, error) {
	if len(text) > protocols.MaxRoomText || !utf8.ValidString(text) {
		return RoomMessage{}, ErrRoomText
	}
	j, err := s.room(room)
	if err != nil {
		return RoomMessage{}, err
	}
	if err := j.self.Wait(ctx); err != nil {
		return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
	}
	j.send.Lock()
	defer j.send.Unlock()
	me := s.h.ID()
	hw, err := s.store.HighWater(ctx, room, me)
	if err != nil {
		return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
	}
	now := s.now().UTC() // one reading for sent_at and the clock: the clock is never below sent_at
	clock, err := s.nextClock(ctx, j, hw, now)
	if err != nil {
		return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
	}
	m := RoomMessage{Room: room, Author: me, Seq: hw + 1, Clock: clock, SentAt: now.Truncate(time.Millisecond),
		ReceivedAt: now, Text: text}
	// Refuse here what could never be published (a clock of ours past
	// protocols.MaxRoomClock), rather than store it for good.
	if _, err := protocols.EncodeRoomMessage(wireOf(m)); err != nil {
		return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
	}
	j.held.raise(me, m.Seq)
	if _, err := s.store.AddRoomMessage(ctx, m); err != nil {
		return RoomMessage{}, fmt.Errorf("chat: store message for %q: %w", room, err)
	}
	j.lastClock = clock
	err = s.publish(ctx, j, &m)
	s.notify(RoomEvent{Room: room, Message: &m})
	if err != nil {
		return m, err
	}
	s.log.Debug("sent", "room", room, "seq", m.Seq)
	return m, nil
}

// nextClock is the clock at now of our next message in j, whose previous
// seq is hw (protocols.NextRoomClock): after our previous message's clock, read
// from the store on the first Send since we started (our clock may have
// been set back since), and after every clock we hold in the room up to
// protocols.MaxRoomClockFollow ahead of our clock.
func (s *RoomService) nextClock(ctx context.Context, j *joined, hw uint64, now time.Time) (int64, error) {
	if j.lastClock == 0 && hw > 0 {
		prev, err := s.ownClock(ctx, j.Name, hw)
		if err != nil {
			return 0, err
		}
		j.lastClock = prev
	}
	held, err := s.highestClock(ctx, j.Name, 0)
	if err != nil {
		return 0, err
	}
	followed := held
	if f := protocols.RoomClockFollows(now); held > f {
		if followed, err = s.highestClock(ctx, j.Name, f); err != nil {
			return 0, err
		}
	}
	return protocols.NextRoomClock(j.lastClock, held, followed, now), nil
}

// highestClock returns the highest clock held in room, at most atMost when
// that is above 0 (0: none held).
func (s *RoomService) highestClock(ctx context.Context, room string, atMost int64) (int64, error) {
	last, err := s.store.RoomMessages(ctx, RoomFilter{Room: room, ClockAtMost: atMost, Limit: 1})
	if err != nil || len(last) == 0 {
		return 0, err
	}
	return last[0].Clock, nil
}

// ownClock returns the clock of our message seq in room (0 if it is not
// stored).
func (s *RoomService) ownClock(ctx context.Context, room string, seq uint64) (int64, error) {
	hws, err := s.store.HighWaters(ctx, room)
	if err != nil {
		return 0, err
	}
	above := make(map[peer.ID]uint64, len(hws)+1) // every author's messages left out, but our seq
	maps.Copy(above, hws)
	above[s.h.ID()] = seq - 1
	ms, err := s.store.RoomMessages(ctx, RoomFilter{Room: room, Above: above, Limit: 1})
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	return ms[0].Clock, nil
}

// wireOf is m as a protocols.RoomMessage.
func wireOf(m RoomMessage) protocols.RoomMessage {
	return protocols.RoomMessage{Room: m.Room, Seq: m.Seq, SentAt: m.SentAt, Clock: m.Clock, Text: m.Text}
}

// publish publishes our stored message m on j's topic. The validator
// records its signed form in the store as pubsub publishes it; publish
// copies ID and Raw into m.
func (s *RoomService) publish(ctx context.Context, j *joined, m *RoomMessage) error {
	payload, err := protocols.EncodeRoomPayload(wireOf(*m), j.Key, j.Topic)
	if err != nil {
		return fmt.Errorf("chat: send to %q: %w", m.Room, err)
	}
	j.signedID, j.signedRaw = "", nil // never another message's
	if err := j.topic.Publish(ctx, payload); err != nil {
		return fmt.Errorf("chat: publish to %q: %w", m.Room, err)
	}
	m.ID, m.Raw = j.signedID, j.signedRaw
	return nil
}

// republish publishes our messages in j that were stored but never
// published (the process stopped in between), in seq order.
func (s *RoomService) republish(ctx context.Context, j *joined) {
	j.send.Lock()
	defer j.send.Unlock()
	ms, err := s.store.Unpublished(ctx, j.Name, s.h.ID())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list unpublished room messages", "room", j.Name, "err", err)
		}
		return
	}
	for i := range ms {
		if err := s.publish(ctx, j, &ms[i]); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("republish room message", "room", j.Name, "seq", ms[i].Seq, "err", err)
			}
			return
		}
		s.notify(RoomEvent{Room: j.Name, Message: &ms[i]}) // now with its ID
	}
}
