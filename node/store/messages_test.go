package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestAddIncomingDedupes(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	ana, ben := newPeer(t), newPeer(t)
	m := msg(ana, "hello")
	mustAddIncoming(t, s, m)
	again := m
	again.Text = "changed" // a retry with the same ID changes nothing
	if added, err := s.AddIncoming(ctx, again); err != nil || added {
		t.Fatalf("second AddIncoming = %v, %v; want false, nil", added, err)
	}
	fromBen := m // the same ID from someone else is another message
	fromBen.Peer = ben
	mustAddIncoming(t, s, fromBen)
	ours := m // and so is our own message with that ID
	ours.Peer = ana
	mustAddOutgoing(t, s, ours)
	ms, err := s.Messages(ctx, chat.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(ms); !slices.Equal(got, []string{"hello", "hello", "hello"}) {
		t.Errorf("texts %q", got)
	}
	if ms[0].Peer != ana || ms[0].Out || ms[0].State != chat.StateReceived ||
		ms[1].Peer != ben || !ms[2].Out || ms[2].State != chat.StateQueued {
		t.Errorf("messages %+v", ms)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	p := newPeer(t)
	texts := []string{"", "plain", "with\x00nul", "ünïcödé 日本 🙂", strings.Repeat("x", 64<<10), "line\nbreak\r\n"}
	for _, text := range texts {
		m := msg(p, text)
		m.SentAt = time.Date(2026, 3, 1, 12, 30, 45, 123_456_789, time.UTC)
		mustAddIncoming(t, s, m)
	}
	ms, err := s.Messages(t.Context(), chat.Filter{})
	if err != nil || len(ms) != len(texts) {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	for i, m := range ms {
		if m.Text != texts[i] {
			t.Errorf("message %d: text %q, want %q", i, m.Text, texts[i])
		}
		if want := time.Date(2026, 3, 1, 12, 30, 45, 123_000_000, time.UTC); !m.SentAt.Equal(want) {
			t.Errorf("message %d: SentAt %v, want %v (milliseconds kept)", i, m.SentAt, want)
		}
	}
}

func TestOutboxAndMarkDelivered(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	ana, ben := newPeer(t), newPeer(t)
	a1, b1, a2 := msg(ana, "a1"), msg(ben, "b1"), msg(ana, "a2")
	for _, m := range []chat.Message{a1, b1, a2} {
		mustAddOutgoing(t, s, m)
	}
	mustAddIncoming(t, s, msg(ana, "in")) // never in the outbox
	if err := s.AddOutgoing(ctx, a1); err == nil {
		t.Error("AddOutgoing accepted an ID twice")
	}
	outbox := func(p string) []string {
		t.Helper()
		ms, err := s.Outbox(ctx, map[string]chat.Message{"ana": a1, "ben": b1}[p].Peer)
		if err != nil {
			t.Fatal(err)
		}
		return texts(ms)
	}
	if got := outbox(""); !slices.Equal(got, []string{"a1", "b1", "a2"}) {
		t.Errorf("outbox %q, want oldest first", got)
	}
	if got := outbox("ana"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("ana's outbox %q", got)
	}
	for range 2 { // the second time is a no-op, not an error
		if err := s.MarkDelivered(ctx, a1.ID); err != nil {
			t.Fatalf("MarkDelivered: %v", err)
		}
	}
	if got := outbox(""); !slices.Equal(got, []string{"b1", "a2"}) {
		t.Errorf("outbox after delivery %q", got)
	}
	ms, _ := s.Messages(ctx, chat.Filter{Peer: ana, Limit: 1})
	if len(ms) != 1 || ms[0].ID != a1.ID || ms[0].State != chat.StateDelivered || !ms[0].Out {
		t.Errorf("delivered message %+v", ms)
	}
	all, _ := s.Messages(ctx, chat.Filter{Peer: ana})
	in := all[slices.IndexFunc(all, func(m chat.Message) bool { return !m.Out })]
	for _, id := range []chat.MessageID{chat.NewMessageID(), in.ID} { // unknown; not ours
		if err := s.MarkDelivered(ctx, id); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("MarkDelivered(%s) = %v, want chat.ErrNotFound", id, err)
		}
	}
}

func TestMessagesFilter(t *testing.T) {
	s, _ := newStore(t)
	ana, ben := newPeer(t), newPeer(t)
	for i, text := range []string{"a1", "b1", "a2", "b2", "a3"} {
		m := msg([]peer.ID{ana, ben}[i%2], text)
		if i%3 == 0 {
			mustAddOutgoing(t, s, m)
		} else {
			mustAddIncoming(t, s, m)
		}
	}
	all, err := s.Messages(t.Context(), chat.Filter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("%d messages, %v", len(all), err)
	}
	tests := []struct {
		name string
		f    chat.Filter
		want []string
	}{
		{"all", chat.Filter{}, []string{"a1", "b1", "a2", "b2", "a3"}},
		{"peer", chat.Filter{Peer: ana}, []string{"a1", "a2", "a3"}},
		{"after", chat.Filter{AfterSeq: all[1].Seq}, []string{"a2", "b2", "a3"}},
		{"after last", chat.Filter{AfterSeq: all[4].Seq}, nil},
		{"limit", chat.Filter{Limit: 2}, []string{"a1", "b1"}},
		{"limit above count", chat.Filter{Limit: 50}, []string{"a1", "b1", "a2", "b2", "a3"}},
		{"all three", chat.Filter{Peer: ben, AfterSeq: all[0].Seq, Limit: 1}, []string{"b1"}},
		{"peer and after", chat.Filter{Peer: ana, AfterSeq: all[2].Seq}, []string{"a3"}},
		{"nobody", chat.Filter{Peer: newPeer(t)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := s.Messages(t.Context(), tt.f)
			if err != nil || !slices.Equal(texts(ms), tt.want) {
				t.Errorf("Messages(%+v) = %q, %v; want %q", tt.f, texts(ms), err, tt.want)
			}
			for i := 1; i < len(ms); i++ {
				if ms[i].Seq <= ms[i-1].Seq {
					t.Errorf("not in Seq order: %d then %d", ms[i-1].Seq, ms[i].Seq)
				}
			}
		})
	}
	if _, err := s.Messages(t.Context(), chat.Filter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestMessageNeedsPeer(t *testing.T) {
	s, _ := newStore(t)
	for _, p := range []peer.ID{"", "garbage"} { // garbage: stored, it could not be read back
		m := msg(p, "to nobody")
		if _, err := s.AddIncoming(t.Context(), m); err == nil {
			t.Errorf("AddIncoming with peer %q succeeded", p)
		}
		if err := s.AddOutgoing(t.Context(), m); err == nil {
			t.Errorf("AddOutgoing with peer %q succeeded", p)
		}
	}
	if ms, err := s.Messages(t.Context(), chat.Filter{}); err != nil || len(ms) != 0 {
		t.Errorf("messages %+v, %v; want none", ms, err)
	}
}
