package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// connectNodes connects a to b directly.
func connectNodes(t *testing.T, a, b *node.Node) {
	t.Helper()
	if err := a.Host().Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// waitMembers polls n's room listing until room shows at least want
// members; a minute bounds a broken test.
func waitMembers(t *testing.T, n *node.Node, room string, want int) node.RoomInfo {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rs, err := n.Rooms(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Name == room && r.Members >= want {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: fewer than %d members after a minute: %+v", room, want, rs)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not a synchronisation
	}
}

func waitRoomMessage(t *testing.T, events <-chan node.Event, id string) node.RoomMessageInfo {
	t.Helper()
	ev := waitEvent(t, events, func(ev node.Event) bool {
		return ev.Type == node.EventRoom && ev.Kind == node.RoomKindMessage && ev.RoomMessage.ID == id
	})
	return *ev.RoomMessage
}

func TestRoomMessagesBothWays(t *testing.T) {
	w := nothingLost(t)
	a, b := w.start(), w.start()
	befriend(t, a, b, "ana", "ben")
	connectNodes(t, a, b)
	aEvents, cancelA := a.Events().Subscribe()
	defer cancelA()
	bEvents, cancelB := b.Events().Subscribe()
	defer cancelB()
	for _, n := range []*node.Node{a, b} {
		info, err := n.JoinRoom(t.Context(), "lobby", nil)
		if err != nil || info.Name != "lobby" || info.Private {
			t.Fatalf("join: %+v %v", info, err)
		}
	}
	waitEvent(t, aEvents, func(ev node.Event) bool {
		return ev.Type == node.EventRoom && ev.Kind == node.RoomKindJoined && ev.Room == "lobby"
	})
	waitMembers(t, a, "lobby", 1)
	waitMembers(t, b, "lobby", 1)

	sent, err := a.SendRoom(t.Context(), "lobby", "hello room")
	if err != nil || sent.ID == "" || !sent.Mine || sent.From != a.ID().String() || sent.Name != "" {
		t.Fatalf("send: %+v %v", sent, err)
	}
	got := waitRoomMessage(t, bEvents, sent.ID)
	if got.Text != "hello room" || got.From != a.ID().String() || got.Name != "ana" || got.Mine || got.Room != "lobby" ||
		!got.SentAt.Equal(sent.SentAt) {
		t.Fatalf("ben got %+v, ana sent %+v", got, sent)
	}
	reply, err := b.SendRoom(t.Context(), "lobby", "hi ana")
	if err != nil {
		t.Fatal(err)
	}
	waitRoomMessage(t, aEvents, reply.ID)
	for _, n := range []*node.Node{a, b} {
		ms, err := n.RoomMessages(t.Context(), "lobby", 0)
		if err != nil || len(ms) != 2 || ms[0].ID != sent.ID || ms[1].ID != reply.ID {
			t.Fatalf("log on %s: %+v %v", n.ID(), ms, err)
		}
		last, err := n.RoomMessages(t.Context(), "lobby", 1)
		if err != nil || len(last) != 1 || last[0].ID != reply.ID {
			t.Fatalf("last message on %s: %+v %v", n.ID(), last, err)
		}
	}
	rs, _ := b.Rooms(t.Context())
	if len(rs) != 1 || rs[0].Messages != 2 || rs[0].Members != 1 {
		t.Fatalf("ben's rooms: %+v", rs)
	}
}

// Bad input gets an error naming the problem; the secret never shows in it.
func TestRoomErrors(t *testing.T) {
	w := nothingLost(t)
	n := w.start()
	ctx := t.Context()
	secret := []byte("sesame-street-secret")
	if _, err := n.JoinRoom(ctx, "ops", secret); err != nil {
		t.Fatal(err)
	}
	if r, err := n.JoinRoom(ctx, "ops", secret); err != nil || !r.Private {
		t.Fatalf("joining again with the same secret: %+v %v", r, err)
	}
	tests := []struct {
		what string
		err  error
		want error
	}{
		{"another secret", second(n.JoinRoom(ctx, "ops", []byte("another secret"))), chat.ErrRoomKeyChange},
		{"no secret for a private room", second(n.JoinRoom(ctx, "ops", nil)), chat.ErrRoomKeyChange},
		{"short secret", second(n.JoinRoom(ctx, "new", []byte("short"))), node.ErrBadRoomSecret},
		{"bad name", second(n.JoinRoom(ctx, "Big Room", nil)), node.ErrBadRoomName},
		{"send to a room not joined", second(n.SendRoom(ctx, "lobby", "hi")), chat.ErrNotJoined},
		{"text too long", second(n.SendRoom(ctx, "ops", strings.Repeat("x", protocols.MaxRoomText+1))), chat.ErrRoomText},
		{"empty text", second(n.SendRoom(ctx, "ops", "")), chat.ErrEmpty},
		{"log of an unknown room", second(n.RoomMessages(ctx, "lobby", 0)), chat.ErrNotJoined},
		{"negative limit", second(n.RoomMessages(ctx, "ops", -1)), node.ErrBadRoomLimit},
		{"leave a room not joined", n.LeaveRoom(ctx, "lobby"), chat.ErrNotJoined},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.what, tt.err, tt.want)
		}
		if tt.err != nil && strings.Contains(tt.err.Error(), "sesame") {
			t.Errorf("%s: the error shows the secret: %v", tt.what, tt.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// A node rejoins its rooms when it restarts, and a room it left keeps its
// messages.
func TestRoomsRejoinedAfterRestart(t *testing.T) {
	w := nothingLost(t)
	cfg := nodetest.Config(t)
	n, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	w.add(n)
	ctx := t.Context()
	if _, err := n.JoinRoom(ctx, "ops", []byte("sesame-street-secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.JoinRoom(ctx, "lobby", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.SendRoom(ctx, "lobby", "before the restart"); err != nil {
		t.Fatal(err)
	}
	events, cancel := n.Events().Subscribe()
	if err := n.LeaveRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, func(ev node.Event) bool {
		return ev.Type == node.EventRoom && ev.Kind == node.RoomKindLeft && ev.Room == "lobby"
	})
	cancel()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = node.New(cfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	w.add(n)
	rs, err := n.Rooms(ctx)
	if err != nil || len(rs) != 1 || rs[0].Name != "ops" || !rs[0].Private {
		t.Fatalf("rooms after a restart: %+v %v", rs, err)
	}
	if _, err := n.SendRoom(ctx, "ops", "after the restart"); err != nil {
		t.Fatalf("send to the rejoined room: %v", err)
	}
	ms, err := n.RoomMessages(ctx, "lobby", 0)
	if err != nil || len(ms) != 1 || ms[0].Text != "before the restart" || !ms[0].Mine {
		t.Fatalf("the left room's log: %+v %v", ms, err)
	}
}
