package node_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
)

// befriend makes a and b contacts of each other, by ticket.
func befriend(t testing.TB, a, b *node.Node, aName, bName string) {
	t.Helper()
	if _, err := a.AddContact(t.Context(), bName, b.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddContact(t.Context(), aName, a.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
}

// waitMessage waits on n's events for a message event matching f.
func waitMessage(t *testing.T, events <-chan node.Event, f func(node.MessageInfo) bool) node.MessageInfo {
	t.Helper()
	ev := waitEvent(t, events, func(ev node.Event) bool { return ev.Type == node.EventMessage && f(*ev.Message) })
	return *ev.Message
}

// waitEvent returns the first event f accepts. It fails the test if none
// comes within a minute (a bound on a broken test, not a timing assumption).
func waitEvent(t *testing.T, events <-chan node.Event, f func(node.Event) bool) node.Event {
	t.Helper()
	bound := time.NewTimer(time.Minute)
	defer bound.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if f(ev) {
				return ev
			}
		case <-bound.C:
			t.Fatal("no matching event within a minute")
		}
	}
}

func TestMessageBetweenContacts(t *testing.T) {
	w := nothingLost(t)
	a, b := w.start(), w.start()
	befriend(t, a, b, "ana", "ben")
	events, cancel := b.Events().Subscribe()
	defer cancel()
	m, err := a.SendMessage(t.Context(), "ben", "hi ben")
	if err != nil || m.State != string(chat.StateDelivered) {
		t.Fatalf("send: %+v %v", m, err)
	}
	got := waitMessage(t, events, func(x node.MessageInfo) bool { return x.ID == m.ID })
	if got.From != a.ID().String() || got.To != b.ID().String() || got.Name != "ana" ||
		got.Text != "hi ben" || got.State != "received" {
		t.Fatalf("ben got %+v", got)
	}
	inbox, err := b.Messages(t.Context(), "ana", 0)
	if err != nil || len(inbox) != 1 || inbox[0].ID != m.ID {
		t.Fatalf("ben's inbox from ana: %+v %v", inbox, err)
	}
	sent, _ := a.Messages(t.Context(), "", 0)
	if len(sent) != 1 || sent[0].State != "delivered" || sent[0].Name != "ben" {
		t.Fatalf("ana's sent messages: %+v", sent)
	}
}

func TestMessageFromNonContactRefused(t *testing.T) {
	w := nothingLost(t)
	a, b := w.start(), w.start()
	// b knows nobody; a has b as a contact.
	if _, err := a.AddContact(t.Context(), "ben", b.Identity().Ticket); err != nil {
		t.Fatal(err)
	}
	_, err := a.SendMessage(t.Context(), "ben", "hello stranger")
	var re *protocols.RemoteError
	if !errors.As(err, &re) || re.Code != protocols.CodeNotAllowed {
		t.Fatalf("send to a node that accepts contacts only: %v", err)
	}
	if ms, _ := b.Messages(t.Context(), "", 0); len(ms) != 0 {
		t.Fatalf("b stored a message from a non-contact: %+v", ms)
	}
	// With accept = "anyone", the same message goes through.
	c := w.start(func(cfg *node.Config) { cfg.Messages.Accept = node.AcceptAnyone })
	m, err := a.SendMessage(t.Context(), c.Identity().Ticket, "hello stranger")
	if err != nil || m.State != "delivered" {
		t.Fatalf("send to accept=anyone: %+v %v", m, err)
	}
}

func TestBlockedPeerRefused(t *testing.T) {
	w := nothingLost(t)
	a, b := w.start(), w.start()
	befriend(t, a, b, "ana", "ben")
	if _, err := a.SendMessage(t.Context(), "ben", "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Block(t.Context(), "ana", true); err != nil {
		t.Fatal(err)
	}
	if b.Host().Network().Connectedness(a.ID()) == network.Connected {
		t.Fatal("blocking kept the connection open")
	}
	m, err := a.SendMessage(t.Context(), "ben", "after")
	if err == nil && m.State == "delivered" {
		t.Fatal("a blocked peer's message was delivered")
	}
	ms, _ := b.Messages(t.Context(), "", 0)
	if slices.ContainsFunc(ms, func(x node.MessageInfo) bool { return x.Text == "after" }) {
		t.Fatal("b stored a blocked peer's message")
	}
	cs, _ := b.Contacts(t.Context())
	if len(cs) != 1 || !cs[0].Blocked || cs[0].Name != "ana" {
		t.Fatalf("contacts after block: %+v", cs)
	}
}

// A message to a contact that is offline is queued, then delivered exactly
// once when the contact's node starts again (same home, same identity).
func TestMessageQueuedUntilPeerStarts(t *testing.T) {
	w := nothingLost(t)
	a := w.start()
	bcfg := nodetest.Config(t)
	b, err := node.New(bcfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	w.add(b)
	befriend(t, a, b, "ana", "ben")
	b.Close()

	m, err := a.SendMessage(t.Context(), "ben", "see you later")
	if err != nil || m.State != "queued" {
		t.Fatalf("send to offline contact: %+v %v", m, err)
	}
	events, cancel := a.Events().Subscribe()
	defer cancel()
	b2, err := node.New(bcfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	w.add(b2)
	// b2 listens on new ports: it reaches out to ana, whose outbox then
	// sends at once.
	if err := b2.Connect(t.Context(), a.ID()); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, events, func(x node.MessageInfo) bool { return x.ID == m.ID && x.State == "delivered" })
	ms, _ := b2.Messages(t.Context(), "ana", 0)
	if len(ms) != 1 || ms[0].ID != m.ID {
		t.Fatalf("ben has %d copies, want 1: %+v", len(ms), ms)
	}
}

func TestContactsErrors(t *testing.T) {
	a, b := nodetest.Start(t), nodetest.Start(t)
	ticket := b.Identity().Ticket
	if _, err := a.AddContact(t.Context(), "ben", ticket); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, target string
		want         string
	}{
		{"ben", nodetest.Start(t).ID().String(), "taken"},
		{"benny", ticket, "ben"},                // same peer under another name
		{"bad name", ticket, "name"},            // spaces
		{"carl", "kith1nonsense", "ticket"},     // malformed ticket
		{"carl", "12D3KooWnotapeer", "peer ID"}, // malformed peer ID
		{"self", a.Identity().Ticket, "this node"},
	}
	for _, tt := range tests {
		if _, err := a.AddContact(t.Context(), tt.name, tt.target); err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("add %q %q: %v, want an error mentioning %q", tt.name, tt.target, err, tt.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
