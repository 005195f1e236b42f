package chat_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestF7DMClockSkew: F7 for direct messages, through an injected clock
// (WithDMClock). The sender's clock is off the receiver's by ±1 h or ±1
// day, or jumps a day ahead and a day back between messages. No clock
// orders, expires or refuses a DM (protocols/doc.go, "Clocks"): messages
// queued while the receiver is away, then messages sent live, are each
// acked, stored once and shown in the order sent (N3, N6, checked by
// nothingLost over the stores and what the services reported), with
// sent_at as the sender stated it.
func TestF7DMClockSkew(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name string
		skew func(i int64) time.Duration // the sender's clock minus the receiver's, at its i-th reading
	}{
		{"sender 1 day behind", func(int64) time.Duration { return -day }},
		{"sender 1 h behind", func(int64) time.Duration { return -time.Hour }},
		{"sender 1 h ahead", func(int64) time.Duration { return time.Hour }},
		{"sender 1 day ahead", func(int64) time.Duration { return day }},
		{"sender's clock jumping a day back and forth", func(i int64) time.Duration { return day * time.Duration(1-2*(i%2)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nothingLost(t)
			var readings atomic.Int64
			clock := func() time.Time { return time.Now().Add(tc.skew(readings.Add(1))) }
			a := startDM(t, newHost(t, nil), chat.DMConfig{SendTimeout: 500 * time.Millisecond, RetryMin: 50 * time.Millisecond},
				chat.WithDMClock(clock))
			bKey, _, _ := crypto.GenerateEd25519Key(nil)
			bOff := newHost(t, bKey)
			know(a.h, bOff)
			bOff.Close() // the receiver is away

			var sent []chat.Message
			for i := range 3 {
				m, err := a.dm.Send(t.Context(), bOff.ID(), fmt.Sprintf("queued %d", i))
				if err != nil || m.State != chat.StateQueued {
					t.Fatalf("send to the absent receiver: %+v, %v; want queued", m, err)
				}
				sent = append(sent, m)
			}
			b := startDM(t, newHost(t, bKey), chat.DMConfig{})
			know(a.h, b.h)
			if err := a.h.Connect(t.Context(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
				t.Fatal(err)
			}
			for _, m := range sent {
				a.waitFor(t, func(x chat.Message) bool { return x.ID == m.ID && x.State == chat.StateDelivered })
			}
			for i := range 3 {
				sent = append(sent, mustDeliver(t, a, b.h.ID(), fmt.Sprintf("live %d", i)))
			}

			got := b.store.received()
			if len(got) != len(sent) {
				t.Fatalf("the receiver stored %d messages, want %d", len(got), len(sent))
			}
			for i, m := range got {
				if m.ID != sent[i].ID || m.Text != sent[i].Text {
					t.Errorf("the receiver's message %d is %q, sent as %q", i, m.Text, sent[i].Text)
				}
				if !m.SentAt.Equal(sent[i].SentAt) {
					t.Errorf("%q stored with sent_at %v, stated %v", m.Text, m.SentAt, sent[i].SentAt)
				}
			}
			stated := make([]time.Time, len(sent))
			for i, m := range sent {
				stated[i] = m.SentAt
				if d := m.SentAt.Sub(time.Now()); d.Abs() < 50*time.Minute {
					t.Errorf("%q stated %v, within 50 min of the real clock: the skew was not applied", m.Text, m.SentAt)
				}
			}
			if tc.name == "sender's clock jumping a day back and forth" && slices.IsSortedFunc(stated, time.Time.Compare) {
				t.Errorf("the jumping clock's sent_at are in order (%v): the test would not see ordering by time", stated)
			}
		})
	}
}
