package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kithnet/kith/node/api"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
)

// The client's room calls reach the node and come back as the TUI and the
// CLI read them.
func TestRoomsThroughAPI(t *testing.T) {
	n := nodetest.Start(t)
	c := embedded(t, n)
	ctx := t.Context()
	if rs, err := c.Rooms(ctx); err != nil || rs == nil || len(rs) != 0 {
		t.Fatalf("rooms before joining: %#v %v (want an empty list)", rs, err)
	}
	open, err := c.JoinRoom(ctx, "lobby", nil)
	if err != nil || open.Name != "lobby" || open.Private {
		t.Fatalf("join lobby: %+v %v", open, err)
	}
	private, err := c.JoinRoom(ctx, "ops", []byte("a long enough secret"))
	if err != nil || !private.Private {
		t.Fatalf("join ops: %+v %v", private, err)
	}
	if _, err := c.JoinRoom(ctx, "ops", []byte("a long enough secret")); err != nil {
		t.Fatalf("joining again with the same secret: %v", err)
	}
	for _, text := range []string{"one", "two", "three"} {
		m, err := c.SendRoom(ctx, "lobby", text)
		if err != nil || m.Text != text || m.Room != "lobby" || !m.Mine || m.From != n.ID().String() || m.ID == "" {
			t.Fatalf("send %q: %+v %v", text, m, err)
		}
	}
	ms, err := c.RoomMessages(ctx, "lobby", 2)
	if err != nil || len(ms) != 2 || ms[0].Text != "two" || ms[1].Text != "three" {
		t.Fatalf("last 2 messages: %+v %v", ms, err)
	}
	if ms, err := c.RoomMessages(ctx, "ops", 0); err != nil || ms == nil || len(ms) != 0 {
		t.Fatalf("messages of a silent room: %#v %v (want an empty list)", ms, err)
	}
	rs, err := c.Rooms(ctx)
	if err != nil || len(rs) != 2 || rs[0].Name != "lobby" || rs[0].Messages != 3 || rs[1].Name != "ops" || !rs[1].Private {
		t.Fatalf("rooms: %+v %v", rs, err)
	}
	if err := c.LeaveRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if rs, _ := c.Rooms(ctx); len(rs) != 1 || rs[0].Name != "ops" {
		t.Fatalf("rooms after leaving lobby: %+v", rs)
	}
}

// Every room error comes with the code the CLI's exit status follows.
func TestRoomAPIErrors(t *testing.T) {
	n := nodetest.Start(t)
	c := embedded(t, n)
	ctx := t.Context()
	if _, err := c.JoinRoom(ctx, "ops", []byte("a long enough secret")); err != nil {
		t.Fatal(err)
	}
	second := func(_ any, err error) error { return err }
	tests := []struct {
		what   string
		err    error
		code   string
		status int
	}{
		{"bad name", second(c.JoinRoom(ctx, "Not OK", nil)), api.CodeBadRequest, http.StatusBadRequest},
		{"short secret", second(c.JoinRoom(ctx, "new", []byte("short"))), api.CodeBadRequest, http.StatusBadRequest},
		{"another secret", second(c.JoinRoom(ctx, "ops", []byte("another long secret"))), api.CodeConflict, http.StatusConflict},
		{"send to a room not joined", second(c.SendRoom(ctx, "lobby", "hi")), api.CodeNotFound, http.StatusNotFound},
		{"send too long", second(c.SendRoom(ctx, "ops", strings.Repeat("é", protocols.MaxRoomText))), api.CodeBadRequest, http.StatusBadRequest},
		{"send empty", second(c.SendRoom(ctx, "ops", "")), api.CodeBadRequest, http.StatusBadRequest},
		{"log of a room never joined", second(c.RoomMessages(ctx, "lobby", 0)), api.CodeNotFound, http.StatusNotFound},
		{"leave a room not joined", c.LeaveRoom(ctx, "lobby"), api.CodeNotFound, http.StatusNotFound},
		{"bad name in a path", c.LeaveRoom(ctx, "UPPER"), api.CodeBadRequest, http.StatusBadRequest},
	}
	for _, tt := range tests {
		var ae *api.Error
		if !errors.As(tt.err, &ae) || ae.Code != tt.code || ae.Status != tt.status {
			t.Errorf("%s: %v (%+v), want code %s", tt.what, tt.err, ae, tt.code)
		}
	}
}
