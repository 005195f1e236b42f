package store

import (
	"fmt"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// churnedRoom fills a room as TestSoakChurn's (build tag soak) is after
// 25 minutes: authors authors of perAuthor messages each, interleaved in
// clock order as they were sent, written in one transaction.
func churnedRoom(b *testing.B, s *Store, room string, authors, perAuthor int) []peer.ID {
	b.Helper()
	ps := make([]peer.ID, authors)
	for i := range ps {
		ps[i] = newPeer(b)
	}
	tx, err := s.w.BeginTx(b.Context(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	raw := make([]byte, 300)
	for seq := 1; seq <= perAuthor; seq++ {
		for i, p := range ps {
			clock := int64(seq*authors + i)
			if _, err := tx.Exec(`INSERT INTO room_messages (room, author, seq, id, clock, sent_at, received_at, text, raw)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, room, []byte(p), seq, fmt.Sprint(i, seq), clock, clock, clock, "says", raw); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ps
}

// BenchmarkRoomHistoryAnswer is a history server's query for one answer
// (chat.answerHistory) in a room of 18 000 messages from 400 authors, to a
// requester that holds everything but the last third of 4 authors.
func BenchmarkRoomHistoryAnswer(b *testing.B) {
	s, _ := newStore(b)
	const authors, per = 400, 45
	ps := churnedRoom(b, s, "r", authors, per)
	above := map[peer.ID]uint64{}
	for i, p := range ps {
		above[p] = per
		if i < 4 {
			above[p] = per * 2 / 3
		}
	}
	for b.Loop() {
		ms, err := s.RoomMessages(b.Context(), chat.RoomFilter{Room: "r", Above: above, Signed: true, Limit: 129, Oldest: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(ms) != 4*(per-per*2/3) {
			b.Fatalf("%d messages, want %d", len(ms), 4*(per-per*2/3))
		}
	}
}
