package chat_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// A member that joins a room that has spoken for a while takes its newest
// messages only (RoomConfig.HistoryOnJoin; 150 of 300 here, over two
// answers of historyAnswerMax), in the room's order; what is older shows
// no gap, and is never fetched later: not when a message arrives live, not
// when the member starts again on its store and syncs (its requests carry
// since, the floor it keeps). Before, a newcomer took the whole room: in
// TestSoakChurn (build tag soak) every newcomer fetched 18 000 messages
// from the node it bootstrapped from, whose history answers came to read
// the whole room each, and that node fell behind the room.
func TestHistoryJoinTakesRecentPast(t *testing.T) {
	nothingLost(t)
	a := newRoomNode(t, chat.RoomConfig{Rate: 1000, Burst: 1000})
	a.join(t, "lobby", nil)
	const n, keep = 300, 150
	for i := range n {
		if _, err := a.svc.Send(t.Context(), "lobby", fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	store := newMemRoomStore()
	cfg := chat.RoomConfig{HistoryOnJoin: keep}
	c := buildRoomNodeOn(t, newHost(t, key), store, cfg, nil)
	connect(t, c.h, a.h)
	c.join(t, "lobby", nil)
	c.waitBackfilled(t, "lobby", keep)
	c.waitHolds(t, "lobby", keep)
	all := a.ids(t, "lobby")
	if got := c.ids(t, "lobby"); !slices.Equal(got, all[n-keep:]) {
		t.Fatalf("c holds %d messages; want a's last %d, in a's order", len(got), keep)
	}
	// The floor is set once the last round is in (its messages are
	// reported as they are stored, before it).
	waitFor(t, "c's floor set", func() bool {
		f, err := store.RoomFloor(t.Context(), "lobby")
		return err == nil && f != 0
	})
	oldest := a.listed(t, "lobby")[n-keep]
	if f, err := store.RoomFloor(t.Context(), "lobby"); err != nil || f != oldest.Clock {
		t.Errorf("c's floor %d (%v); want the clock of the oldest it took, %d", f, err, oldest.Clock)
	}
	if gaps, err := c.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Errorf("c shows gaps %v (%v); what is older than it took is not a gap", gaps, err)
	}

	// A live message: held, no gap, nothing older fetched.
	if _, err := a.svc.Send(t.Context(), "lobby", "live"); err != nil {
		t.Fatal(err)
	}
	c.waitHolds(t, "lobby", keep+1)

	// c starts again on its store: it syncs with a, asking for nothing
	// older than its floor, so it holds what it held; a message a sent
	// while c was away is taken.
	c.svc.Close()
	c.h.Close()
	if _, err := a.svc.Send(t.Context(), "lobby", "while c was away"); err != nil {
		t.Fatal(err)
	}
	c = buildRoomNodeOn(t, newHost(t, key), store, cfg, nil)
	connect(t, c.h, a.h)
	c.join(t, "lobby", nil)
	c.waitBackfilled(t, "lobby", 1)
	c.waitHolds(t, "lobby", keep+2)
	if got := c.ids(t, "lobby"); !slices.Equal(got, a.ids(t, "lobby")[n-keep:]) {
		t.Errorf("after its restart c holds %d messages; want a's last %d", len(got), keep+2)
	}
	if gaps, err := c.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Errorf("after its restart c shows gaps %v (%v)", gaps, err)
	}
}
