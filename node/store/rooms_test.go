package store

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
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
	m := chat.RoomMessage{Room: "ops", Author: a, Seq: 1, Clock: time.Now().UnixMilli(), SentAt: time.Now(), ReceivedAt: time.Now(), Text: "hi"}
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
		{Room: "lobby", Author: a, Seq: math.MaxInt64 + 1, Clock: 1},
		{Room: "lobby", Author: a, Seq: 0, Clock: 1},
		{Room: "lobby", Author: "not a peer", Seq: 1, Clock: 1},
		{Room: "lobby", Author: a, Seq: 1}, // no clock
		{Room: "lobby", Author: a, Seq: 1, Clock: -5},
	} {
		if added, err := s.AddRoomMessage(ctx, m); added || err == nil {
			t.Errorf("AddRoomMessage(seq %d, author %q, clock %d) = %v, %v; want an error", m.Seq, m.Author, m.Clock, added, err)
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
		[]string{"contacts", "messages", "room_floors", "room_joins", "room_messages", "rooms", "sqlite_sequence", "transfer_manifests", "transfers"})
	m := chat.RoomMessage{Room: "lobby", Author: newPeer(t), Seq: 1, Clock: 1, SentAt: time.Now(), ReceivedAt: time.Now(), Text: "hi"}
	if added, err := s.AddRoomMessage(t.Context(), m); !added || err != nil {
		t.Errorf("AddRoomMessage after migrating = %v, %v", added, err)
	}
}

// A file written by a kith that knew schema 3 (rooms ordered by sent_at)
// gets clocks: each message it held has its sent_at as clock, as a reader
// takes a version 1 message, so the room shows in the order it did; its
// other columns are kept; a new message is ordered by its clock.
func TestMigrateFromSchema3(t *testing.T) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil || len(migs) < 4 {
		t.Fatalf("embedded migrations: %d, %v", len(migs), err)
	}
	path := filepath.Join(t.TempDir(), File)
	old, err := open(t.Context(), path, migs[:3])
	if err != nil {
		t.Fatal(err)
	}
	a, b := newPeer(t), newPeer(t)
	if b < a {
		a, b = b, a
	}
	const at = 1_767_225_600_000
	for _, r := range []struct {
		author []byte
		seq    int64
		sent   int64
		text   string
		raw    []byte
	}{
		{[]byte(b), 1, at + 2000, "b1", []byte("signed b1")},
		{[]byte(a), 1, at + 1000, "a1", []byte("signed a1")},
		{[]byte(a), 2, at + 2000, "a2", nil}, // ours, not published
	} {
		if _, err := old.w.ExecContext(t.Context(), `INSERT INTO room_messages
			(room, author, seq, id, sent_at, received_at, text, raw) VALUES ('lobby', ?, ?, ?, ?, ?, ?, ?)`,
			r.author, r.seq, "id-"+r.text, r.sent, r.sent+5, r.text, r.raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open a schema 3 file: %v", err)
	}
	defer s.Close()
	checkSchema(t, path, len(migs),
		[]string{"contacts", "messages", "room_floors", "room_joins", "room_messages", "rooms", "sqlite_sequence", "transfer_manifests", "transfers"})
	ms, err := s.RoomMessages(t.Context(), chat.RoomFilter{Room: "lobby"})
	if err != nil || len(ms) != 3 {
		t.Fatalf("room messages after migrating: %+v, %v", ms, err)
	}
	for i, want := range []string{"a1", "a2", "b1"} { // (sent_at, author, seq), as before
		m := ms[i]
		if m.Text != want || m.Clock != m.SentAt.UnixMilli() || m.ID != "id-"+want || m.ReceivedAt.UnixMilli() != m.SentAt.UnixMilli()+5 {
			t.Errorf("message %d after migrating: %+v, want %s with its sent_at as clock", i, m, want)
		}
	}
	if un, err := s.Unpublished(t.Context(), "lobby", a); err != nil || len(un) != 1 || un[0].Text != "a2" {
		t.Errorf("Unpublished after migrating: %+v, %v", un, err)
	}
	// A reply stamped after a message a day ahead, sent_at earlier than all.
	reply := chat.RoomMessage{Room: "lobby", Author: b, Seq: 2, Clock: at + 1500, SentAt: time.UnixMilli(at - 86400_000),
		ReceivedAt: time.UnixMilli(at), Text: "b2", Raw: []byte("signed b2")}
	if added, err := s.AddRoomMessage(t.Context(), reply); !added || err != nil {
		t.Fatalf("AddRoomMessage after migrating = %v, %v", added, err)
	}
	ms, _ = s.RoomMessages(t.Context(), chat.RoomFilter{Room: "lobby"})
	var texts []string
	for _, m := range ms {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, " "); got != "a1 b2 a2 b1" {
		t.Errorf("room order after adding a message by clock: %s, want a1 b2 a2 b1", got)
	}
}
