package chat_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
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
	const n, keep = 300, 150
	a := spokenRoom(t, newHost(t, nil), n)
	key, _, _ := crypto.GenerateEd25519Key(nil)
	store := newMemRoomStore()
	cfg := chat.RoomConfig{HistoryOnJoin: keep}
	c := joinOn(t, key, store, cfg, a)
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
	c = joinOn(t, key, store, cfg, a)
	c.waitBackfilled(t, "lobby", 1)
	c.waitHolds(t, "lobby", keep+2)
	if got := c.ids(t, "lobby"); !slices.Equal(got, a.ids(t, "lobby")[n-keep:]) {
		t.Errorf("after its restart c holds %d messages; want a's last %d", len(got), keep+2)
	}
	if gaps, err := c.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Errorf("after its restart c shows gaps %v (%v)", gaps, err)
	}
}

// A member stopped after it joined a room but before any member answered
// its first history request, by when a live message had come, takes the
// room's recent past when it starts again on its store, not the room's
// whole history: the store keeps that it was joining (SetRoomJoining).
// Before, the live message made it an old member with no floor, which
// fetched the room from its first message on.
func TestHistoryJoinInterruptedTakesRecentPast(t *testing.T) {
	nothingLost(t)
	gate := &historyGate{Host: newHost(t, nil)}
	gate.muted.Store(true)
	const n, keep = 300, 150
	a := spokenRoom(t, gate, n)
	key, _, _ := crypto.GenerateEd25519Key(nil)
	store := newMemRoomStore()
	cfg := chat.RoomConfig{HistoryOnJoin: keep}
	c := joinOn(t, key, store, cfg, a)
	a.waitMesh(t, "lobby", c.h.ID())
	if _, err := a.svc.Send(t.Context(), "lobby", "live"); err != nil {
		t.Fatal(err)
	}
	c.waitHolds(t, "lobby", 1)
	if joining, err := store.RoomJoining(t.Context(), "lobby"); err != nil || !joining {
		t.Fatalf("c's store says joining %v (%v) before any history came; want true", joining, err)
	}
	if gaps, err := c.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Errorf("joining c shows gaps %v (%v); what is older than the recent past is not a gap", gaps, err)
	}
	c.svc.Close()
	c.h.Close()
	if held := c.ids(t, "lobby"); len(held) != 1 {
		t.Fatalf("c holds %d messages when it stops; want the live one", len(held))
	}

	gate.muted.Store(false)
	c = joinOn(t, key, store, cfg, a)
	c.waitHolds(t, "lobby", keep+1)
	all := a.ids(t, "lobby")
	if got := c.ids(t, "lobby"); !slices.Equal(got, all[n+1-(keep+1):]) {
		t.Fatalf("after its restart c holds %d messages; want a's last %d, in a's order", len(got), keep+1)
	}
	waitFor(t, "c's join ended", func() bool {
		joining, err := store.RoomJoining(t.Context(), "lobby")
		return err == nil && !joining
	})
	oldest := a.listed(t, "lobby")[n+1-(keep+1)]
	if f, err := store.RoomFloor(t.Context(), "lobby"); err != nil || f != oldest.Clock {
		t.Errorf("c's floor %d (%v); want the clock of the oldest it took, %d", f, err, oldest.Clock)
	}
	if gaps, err := c.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Errorf("after its restart c shows gaps %v (%v)", gaps, err)
	}
}

// spokenRoom makes a member on h that joins "lobby" and sends n messages
// there; it offers none of them in gossip (noGossip).
func spokenRoom(t *testing.T, h host.Host, n int) *roomNode {
	t.Helper()
	a := buildRoomNode(t, h, chat.RoomConfig{Rate: 1000, Burst: 1000}, []pubsub.Option{noGossip()})
	a.join(t, "lobby", nil)
	for i := range n {
		if _, err := a.svc.Send(t.Context(), "lobby", fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// joinOn starts a member with key on store, connects it to a and joins
// "lobby".
func joinOn(t *testing.T, key crypto.PrivKey, store *memRoomStore, cfg chat.RoomConfig, a *roomNode) *roomNode {
	t.Helper()
	c := buildRoomNodeOn(t, newHost(t, key), store, cfg, nil)
	connect(t, c.h, a.h)
	c.join(t, "lobby", nil)
	return c
}

// historyGate is a host whose room service, while muted, resets every
// history request it is sent: a member that has not answered yet.
type historyGate struct {
	host.Host
	muted atomic.Bool
}

func (h *historyGate) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid != protocols.HistoryProtocol {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(st network.Stream) {
		if h.muted.Load() {
			st.Reset()
			return
		}
		handler(st)
	})
}
