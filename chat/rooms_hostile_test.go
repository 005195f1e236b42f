package chat_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// An outsider that knows a private room's topic but not its secret reads
// nothing of it, and what it posts (sealed with another key, or not sealed)
// is rejected by the members and never shown.
func TestHostileRoomOutsider(t *testing.T) {
	a, b := newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{})
	out := newRoomNode(t, chat.RoomConfig{})
	connect(t, a.h, b.h)
	connect(t, out.h, a.h)
	connect(t, out.h, b.h)
	room := a.join(t, "team", []byte("correct horse"))
	b.join(t, "team", []byte("correct horse"))
	topic, err := out.ps.Join(room.Topic) // no validator: it reads whatever comes
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	a.waitPeers(t, "team", b.h.ID(), out.h.ID())
	b.waitPeers(t, "team", a.h.ID(), out.h.ID())
	out.trace.waitTopicPeers(t, waitBound, topic, a.h.ID(), b.h.ID())

	if _, err := a.svc.Send(t.Context(), "team", "the plans"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	got, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got.Data, []byte("the plans")) || bytes.Contains(got.Data, []byte("team")) {
		t.Errorf("the outsider reads the room: %q", got.Data)
	}
	if _, err := protocols.DecodeRoomPayload(got.Data, "team", nil, room.Topic); err == nil {
		t.Error("the payload decodes without the key")
	}

	wrong, _ := protocols.RoomKeyFromBytes(bytes.Repeat([]byte{7}, protocols.RoomKeySize))
	m := protocols.RoomMessage{Room: "team", Seq: 1, SentAt: time.Now(), Text: "let me in"}
	sealed, _ := protocols.EncodeRoomPayload(m, wrong, room.Topic)
	plain, _ := protocols.EncodeRoomPayload(m, nil, room.Topic)
	for _, p := range [][]byte{sealed, plain} {
		if err := topic.Publish(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		a.waitReject(t, func(r rejected) bool {
			return r.author == out.h.ID() && r.reason == pubsub.RejectValidationFailed
		})
	}
	// a saw the outsider's posts rejected; what it shows next is b's message.
	a.nextMessage(t) // its own "the plans"
	if _, err := b.svc.Send(t.Context(), "team", "ok"); err != nil {
		t.Fatal(err)
	}
	if m := a.nextMessage(t); m.Author != b.h.ID() || m.Text != "ok" {
		t.Fatalf("a shows %+v", m)
	}
}
