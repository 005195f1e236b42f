package store

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/protocols"
)

func TestRoomStoreSuite(t *testing.T) {
	chattest.RoomStoreSuite(t, func(t *testing.T) chat.RoomStore {
		s, _ := newStore(t)
		return s
	})
}

// Rooms and room messages are on disk when the call returns: a reopened
// file has them, a private room's key included.
func TestRoomsSurviveReopen(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	key, err := protocols.DeriveRoomKey("ops", []byte("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := protocols.RoomTopic("ops", key)
	if err := s.SaveRoom(ctx, chat.Room{Name: "ops", Key: key, Topic: topic, JoinedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a := newPeer(t)
	m := chat.RoomMessage{Room: "ops", Author: a, Seq: 1, SentAt: time.Now(), ReceivedAt: time.Now(), Text: "hi"}
	if added, err := s.AddRoomMessage(ctx, m); !added || err != nil {
		t.Fatal(added, err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rooms, err := s2.Rooms(ctx)
	if err != nil || len(rooms) != 1 || !key.Equal(rooms[0].Key) || rooms[0].Topic != topic {
		t.Fatalf("after reopening: %+v, %v", rooms, err)
	}
	if hw, err := s2.HighWater(ctx, "ops", a); hw != 1 || err != nil {
		t.Fatalf("HighWater after reopening = %d, %v", hw, err)
	}
	for room, want := range map[string]int{"ops": 1, "lobby": 0} {
		if n, err := s2.RoomMessageCount(ctx, room); n != want || err != nil {
			t.Errorf("RoomMessageCount(%s) = %d, %v; want %d", room, n, err, want)
		}
	}
}

// What SQLite cannot keep, or what is no room, is refused with a clear
// error and changes nothing.
func TestRoomStoreRefuses(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	a := newPeer(t)
	if err := s.SaveRoom(ctx, chat.Room{Name: "Not A Name", Topic: "x"}); !errors.Is(err, protocols.ErrMalformed) {
		t.Errorf("SaveRoom with a bad name: %v", err)
	}
	for _, m := range []chat.RoomMessage{
		{Room: "lobby", Author: a, Seq: math.MaxInt64 + 1},
		{Room: "lobby", Author: a, Seq: 0},
		{Room: "lobby", Author: "not a peer", Seq: 1},
	} {
		if added, err := s.AddRoomMessage(ctx, m); added || err == nil {
			t.Errorf("AddRoomMessage(seq %d, author %q) = %v, %v; want an error", m.Seq, m.Author, added, err)
		}
	}
	if err := s.SetRoomMessageSigned(ctx, "lobby", a, 1, "00", []byte("x")); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("SetRoomMessageSigned of a message not stored: %v", err)
	}
	if ms, err := s.RoomMessages(ctx, chat.RoomFilter{Room: "lobby"}); len(ms) != 0 || err != nil {
		t.Errorf("after refusals: %+v, %v", ms, err)
	}
}

// A file written by a kith that knew schema 2 (transfers, no rooms) gets
// the room tables and keeps what it held.
func TestMigrateFromSchema2(t *testing.T) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil || len(migs) < 3 {
		t.Fatalf("embedded migrations: %d, %v", len(migs), err)
	}
	path := filepath.Join(t.TempDir(), File)
	old, err := open(t.Context(), path, migs[:2])
	if err != nil {
		t.Fatal(err)
	}
	mustAddIncoming(t, old, msg(newPeer(t), "from before rooms"))
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, path, 2, []string{"contacts", "messages", "sqlite_sequence", "transfer_manifests", "transfers"})
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open a schema 2 file: %v", err)
	}
	defer s.Close()
	if ms, err := s.Messages(t.Context(), chat.Filter{}); err != nil || len(ms) != 1 {
		t.Errorf("messages after migrating: %+v, %v", ms, err)
	}
	checkSchema(t, path, len(migs),
		[]string{"contacts", "messages", "room_messages", "rooms", "sqlite_sequence", "transfer_manifests", "transfers"})
	m := chat.RoomMessage{Room: "lobby", Author: newPeer(t), Seq: 1, SentAt: time.Now(), ReceivedAt: time.Now(), Text: "hi"}
	if added, err := s.AddRoomMessage(t.Context(), m); !added || err != nil {
		t.Errorf("AddRoomMessage after migrating = %v, %v", added, err)
	}
}
