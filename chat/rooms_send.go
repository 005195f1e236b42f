package chat

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
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
	now := s.now().UTC()
	m := RoomMessage{Room: room, Author: me, Seq: hw + 1, SentAt: now.Truncate(1e6), ReceivedAt: now, Text: text}
	payload, err := protocols.EncodeRoomPayload(
		protocols.RoomMessage{Room: room, Seq: m.Seq, SentAt: m.SentAt, Text: text}, j.Key, j.Topic)
	if err != nil {
		return RoomMessage{}, fmt.Errorf("chat: send to %q: %w", room, err)
	}
	if _, err := s.store.AddRoomMessage(ctx, m); err != nil {
		return RoomMessage{}, fmt.Errorf("chat: store message for %q: %w", room, err)
	}
	s.notify(RoomEvent{Room: room, Message: &m})
	if err := j.topic.Publish(ctx, payload); err != nil {
		return m, fmt.Errorf("chat: publish to %q: %w", room, err)
	}
	s.log.Debug("sent", "room", room, "seq", m.Seq)
	return m, nil
}
