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

// Send stores text as our next message in room and publishes it. It waits
// while we are over our own rate (back-pressure, never silent loss). The
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
	if j.lastSent.IsZero() && hw > 0 {
		// The first Send since we started or joined: our previous message
		// was stated before, and our clock may have been set back since.
		if j.lastSent, err = s.ownSentAt(ctx, room, hw); err != nil {
			return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
		}
	}
	now := s.now().UTC()
	// Never state a time before our previous message's: RoomOrder keeps an
	// author's messages in seq order only so.
	sentAt := now.Truncate(time.Millisecond)
	if sentAt.Before(j.lastSent) {
		sentAt = j.lastSent
	}
	m := RoomMessage{Room: room, Author: me, Seq: hw + 1, SentAt: sentAt, ReceivedAt: now, Text: text}
	if _, err := s.store.AddRoomMessage(ctx, m); err != nil {
		return RoomMessage{}, fmt.Errorf("chat: store message for %q: %w", room, err)
	}
	j.lastSent = sentAt
	err = s.publish(ctx, j, &m)
	s.notify(RoomEvent{Room: room, Message: &m})
	if err != nil {
		return m, err
	}
	s.log.Debug("sent", "room", room, "seq", m.Seq)
	return m, nil
}

// ownSentAt returns the time our message seq in room stated (zero if it
// is not stored).
func (s *RoomService) ownSentAt(ctx context.Context, room string, seq uint64) (time.Time, error) {
	hws, err := s.store.HighWaters(ctx, room)
	if err != nil {
		return time.Time{}, err
	}
	above := make(map[peer.ID]uint64, len(hws)+1) // every author's messages left out, but our seq
	maps.Copy(above, hws)
	above[s.h.ID()] = seq - 1
	ms, err := s.store.RoomMessages(ctx, RoomFilter{Room: room, Above: above, Limit: 1})
	if err != nil || len(ms) == 0 {
		return time.Time{}, err
	}
	return ms[0].SentAt, nil
}

// publish publishes our stored message m on j's topic. The validator
// records its signed form in the store as pubsub publishes it; publish
// copies ID and Raw into m.
func (s *RoomService) publish(ctx context.Context, j *joined, m *RoomMessage) error {
	payload, err := protocols.EncodeRoomPayload(
		protocols.RoomMessage{Room: m.Room, Seq: m.Seq, SentAt: m.SentAt, Text: m.Text}, j.Key, j.Topic)
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
		if ms[i].SentAt.After(j.lastSent) {
			j.lastSent = ms[i].SentAt
		}
		if err := s.publish(ctx, j, &ms[i]); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("republish room message", "room", j.Name, "seq", ms[i].Seq, "err", err)
			}
			return
		}
		s.notify(RoomEvent{Room: j.Name, Message: &ms[i]}) // now with its ID
	}
}
