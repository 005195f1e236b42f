package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// demoRooms has alice and bob talk in an open room, then in a private one
// whose secret is generated here, and shows each room's log on bob's side.
func demoRooms(ctx context.Context, w io.Writer, alice, bob *demoPeer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := demoRoom(ctx, w, "lobby", nil, alice, bob); err != nil {
		return err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	// A real secret travels out of band and is read from a file or a
	// prompt; the demo generates one and never prints it.
	return demoRoom(ctx, w, "ops", []byte(hex.EncodeToString(secret)), alice, bob)
}

// demoRoom has both peers join room, waits until each sees the other in
// it, has each send one message that the other receives, and prints the
// room's log on bob's side.
func demoRoom(ctx context.Context, w io.Writer, room string, secret []byte, alice, bob *demoPeer) error {
	kind, detail := "open room", ""
	if secret != nil {
		kind, detail = "private room", " (a generated secret; key derived with Argon2id, payloads sealed)"
	}
	for _, p := range []*demoPeer{alice, bob} {
		if _, err := p.c.JoinRoom(ctx, room, secret); err != nil {
			return fmt.Errorf("demo: %s joins %s: %w", p.name, room, err)
		}
	}
	for _, p := range []*demoPeer{alice, bob} {
		if err := waitDemoMember(ctx, p, room); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "  alice, bob: joined %s %s%s and see each other in it\n", kind, room, detail)
	for _, pair := range [][2]*demoPeer{{alice, bob}, {bob, alice}} {
		if err := demoRoomMessage(ctx, w, room, pair[0], pair[1]); err != nil {
			return err
		}
	}
	ms, err := bob.c.RoomMessages(ctx, room, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  kith room log %s (on bob):\n", room)
	for _, m := range ms {
		who := m.Name
		if m.Mine {
			who = "me"
		}
		fmt.Fprintf(w, "    %s  %-5s  %s\n", m.SentAt.Local().Format("15:04:05.000"), termtext.Escape(who), termtext.Escape(m.Text))
	}
	if len(ms) != 2 {
		return fmt.Errorf("demo: bob's log of %s has %d messages, want 2", room, len(ms))
	}
	return nil
}

// waitDemoMember polls p's room listing until it sees another member.
func waitDemoMember(ctx context.Context, p *demoPeer, room string) error {
	for {
		rs, err := p.c.Rooms(ctx)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Name == room && r.Members > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: %s sees nobody else in %s: %w", p.name, room, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demoRoomMessage has from send a message to room and waits until to has
// it.
func demoRoomMessage(ctx context.Context, w io.Writer, room string, from, to *demoPeer) error {
	events, cancel := to.n.Events().Subscribe()
	defer cancel()
	text := fmt.Sprintf("hi %s, %s here in %s", to.name, from.name, room)
	start := time.Now()
	m, err := from.c.SendRoom(ctx, room, text)
	if err != nil {
		return fmt.Errorf("demo: %s sends to %s: %w", from.name, room, err)
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return fmt.Errorf("demo: %s's event stream ended", to.name)
			}
			if ev.Type == node.EventRoom && ev.Kind == node.RoomKindMessage && ev.RoomMessage.ID == m.ID {
				fmt.Fprintf(w, "  %s -> %s: %q reached %s in %s\n",
					from.name, room, text, to.name, time.Since(start).Round(time.Microsecond))
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("demo: %s never got %s's message in %s: %w", to.name, from.name, room, ctx.Err())
		}
	}
}
