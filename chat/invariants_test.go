package chat_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols/invariants"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

// libp2pLingering are goroutines go-libp2p leaves running a moment after
// a host closed, by design: not ours to wait for.
var libp2pLingering = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"),
}

// ledger is what one test's nothing-lost check looks at: every DM store
// and room member the test started with this package's helpers.
type ledger struct {
	mu    sync.Mutex
	dms   []*dmBook
	rooms []*roomNode
	// elsewhere holds room messages the test signed with a member's key
	// itself (the member's other device, as it were): written by that
	// author, though not by its service.
	elsewhere []chat.RoomMessage
}

// dmBook is one DM service's store and, when the test watched them, the
// changes the service reported (what a user interface shows).
type dmBook struct {
	id    peer.ID
	store *memStore
	shown func() []chat.Message // nil: not watched
}

var ledgers sync.Map // test name -> *ledger (a subtest uses its parent's)

// nothingLost checks, when the test ends, the nothing-lost invariants
// (RELIABILITY.md §4.4) over every DM service and room member the test
// started with this package's helpers (startDM, trackDM, buildRoomNode):
//
//   - N3: every message a DM receiver acked (the sender has it delivered)
//     is stored by the receiver exactly once, with the text and sent_at
//     sent;
//   - N6: each receiver's DM store and what its service reported, read
//     one sender at a time, are in the order sent, none twice; each room
//     member's store, in room order, holds every author's messages in seq
//     order, none twice, as the author wrote them; every message a member
//     stored from another author was reported exactly once;
//   - N7: no goroutine or file descriptor left (NoLeaks), and each DM and
//     history resource-manager scope back to zero once its service closed
//     (ScopesIdle).
//
// Call it first in the test (N7 counts from there); the helpers refuse to
// start a DM service or room member in a test that did not.
func nothingLost(t *testing.T) {
	t.Helper()
	invariants.NoLeaks(t, libp2pLingering...) // N7; runs after every cleanup registered later
	l := &ledger{}
	ledgers.Store(t.Name(), l)
	t.Cleanup(func() {
		ledgers.Delete(t.Name())
		if !t.Failed() {
			l.checkDMs(t)
			l.checkRooms(t)
		}
	})
}

// ledgerOf returns tb's ledger, or its parent test's; a test (not a
// benchmark) without one fails.
func ledgerOf(tb testing.TB) *ledger {
	tb.Helper()
	for name := tb.Name(); ; {
		if l, ok := ledgers.Load(name); ok {
			return l.(*ledger)
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			break
		}
		name = name[:i]
	}
	if _, ok := tb.(*testing.T); ok {
		tb.Fatal("call nothingLost(t) first: every DM and room test checks N3, N6 and N7")
	}
	return nil
}

// trackDM adds a DM service's store (and what it reported, when shown is
// not nil) to the test's check, and checks h's DM scope once the service
// closed: call it before registering the service's Close.
func trackDM(t *testing.T, h host.Host, store *memStore, shown func() []chat.Message) {
	t.Helper()
	l := ledgerOf(t)
	l.mu.Lock()
	l.dms = append(l.dms, &dmBook{id: h.ID(), store: store, shown: shown})
	l.mu.Unlock()
	t.Cleanup(func() { invariants.ScopesIdle(t, h.Network().ResourceManager(), false, chat.DMServiceName) }) // N7
}

// trackRoom adds a room member to the test's check (if tb has a ledger),
// and checks its history scope once its service closed: call it before
// registering the service's Close.
func trackRoom(tb testing.TB, n *roomNode) {
	tb.Helper()
	l := ledgerOf(tb)
	if l == nil {
		return
	}
	l.mu.Lock()
	l.rooms = append(l.rooms, n)
	l.mu.Unlock()
	tb.Cleanup(func() { invariants.ScopesIdle(tb, n.h.Network().ResourceManager(), false, chat.HistoryServiceName) }) // N7
}

// wroteElsewhere tells the test's check that author wrote text as seq in
// room, though not through the service the test started for it: the test
// signed it with author's key.
func wroteElsewhere(t *testing.T, room string, author peer.ID, seq uint64, text string) {
	t.Helper()
	l := ledgerOf(t)
	l.mu.Lock()
	l.elsewhere = append(l.elsewhere, chat.RoomMessage{Room: room, Author: author, Seq: seq, Text: text})
	l.mu.Unlock()
}

// dmLine is a direct message as both ends must hold it.
type dmLine struct {
	id     chat.MessageID
	text   string
	sentAt int64 // Unix ms
}

func lineOf(m chat.Message) dmLine { return dmLine{m.ID, m.Text, m.SentAt.UnixMilli()} }

func (l dmLine) String() string { return l.id.String()[:8] + " " + l.text }

func (l *ledger) checkDMs(t *testing.T) {
	t.Helper()
	// Books of one peer ID are one peer (restarted on the same store, or
	// not); a store is read once.
	type peerBooks struct {
		stores []*memStore
		shown  []chat.Message
		all    bool // every book of the peer was watched
	}
	peers := map[peer.ID]*peerBooks{}
	for _, b := range l.dms {
		p := peers[b.id]
		if p == nil {
			p = &peerBooks{all: true}
			peers[b.id] = p
		}
		if !slices.Contains(p.stores, b.store) {
			p.stores = append(p.stores, b.store)
		}
		if b.shown == nil {
			p.all = false
		} else {
			p.shown = append(p.shown, b.shown()...)
		}
	}
	msgs := func(p *peerBooks) []chat.Message {
		var out []chat.Message
		for _, s := range p.stores {
			ms, _ := s.Messages(t.Context(), chat.Filter{})
			out = append(out, ms...)
		}
		return out
	}
	for from, fp := range peers {
		sentTo := map[peer.ID][]dmLine{}
		ackedBy := map[peer.ID][]dmLine{}
		for _, m := range msgs(fp) {
			if m.Out {
				sentTo[m.Peer] = append(sentTo[m.Peer], lineOf(m))
				if m.State == chat.StateDelivered {
					ackedBy[m.Peer] = append(ackedBy[m.Peer], lineOf(m))
				}
			}
		}
		for to, tp := range peers {
			if to == from {
				continue
			}
			var stored []dmLine
			var transcript []invariants.Said[peer.ID, dmLine]
			for _, m := range msgs(tp) {
				if !m.Out && m.Peer == from {
					stored = append(stored, lineOf(m))
					transcript = append(transcript, invariants.Said[peer.ID, dmLine]{From: from, Msg: lineOf(m)})
				}
			}
			invariants.ExactlyOnce(t, stored, ackedBy[to])                                // N3
			invariants.InSentOrder(t, map[peer.ID][]dmLine{from: sentTo[to]}, transcript) // N6, stored
			if !tp.all {
				continue
			}
			var shown []dmLine
			var display []invariants.Said[peer.ID, dmLine]
			for _, m := range tp.shown {
				if !m.Out && m.Peer == from && m.State == chat.StateReceived {
					shown = append(shown, lineOf(m))
					display = append(display, invariants.Said[peer.ID, dmLine]{From: from, Msg: lineOf(m)})
				}
			}
			invariants.InSentOrder(t, map[peer.ID][]dmLine{from: sentTo[to]}, display) // N6, shown
			invariants.ShownOnce(t, shown, stored)                                     // N6: each stored message shown once
		}
	}
}

// roomLine is a room message as its author wrote it.
type roomLine struct {
	seq  uint64
	text string
}

// roomKey3 names a room message.
type roomKey3 struct {
	room   string
	author peer.ID
	seq    uint64
}

func (k roomKey3) String() string { return fmt.Sprintf("%s: %s #%d", k.room, k.author, k.seq) }

func (l *ledger) checkRooms(t *testing.T) {
	t.Helper()
	type member struct {
		id    peer.ID
		store *memRoomStore
		shown []chat.RoomEvent
	}
	var members []*member
	for _, n := range l.rooms {
		i := slices.IndexFunc(members, func(m *member) bool { return m.store == n.store })
		if i < 0 {
			members = append(members, &member{id: n.h.ID(), store: n.store})
			i = len(members) - 1
		}
		members[i].shown = append(members[i].shown, n.shownEvents()...)
	}
	// What each member wrote, by room and seq.
	wrote := map[string]map[peer.ID][]roomLine{}
	for _, m := range members {
		for _, rm := range m.store.all() {
			if rm.Author != m.id {
				continue
			}
			if wrote[rm.Room] == nil {
				wrote[rm.Room] = map[peer.ID][]roomLine{}
			}
			wrote[rm.Room][m.id] = append(wrote[rm.Room][m.id], roomLine{rm.Seq, rm.Text})
		}
	}
	for _, rm := range l.elsewhere {
		if wrote[rm.Room] == nil {
			wrote[rm.Room] = map[peer.ID][]roomLine{}
		}
		wrote[rm.Room][rm.Author] = append(wrote[rm.Room][rm.Author], roomLine{rm.Seq, rm.Text})
	}
	for _, byAuthor := range wrote {
		for _, lines := range byAuthor {
			slices.SortFunc(lines, func(a, b roomLine) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	for _, m := range members {
		byRoom := map[string][]chat.RoomMessage{}
		var stored []roomKey3
		for _, rm := range m.store.all() {
			byRoom[rm.Room] = append(byRoom[rm.Room], rm)
			if rm.Author != m.id {
				stored = append(stored, roomKey3{rm.Room, rm.Author, rm.Seq})
			}
		}
		for room, ms := range byRoom {
			slices.SortFunc(ms, chat.RoomOrder)
			var transcript []invariants.Said[peer.ID, roomLine]
			for _, rm := range ms {
				if _, known := wrote[room][rm.Author]; known {
					transcript = append(transcript, invariants.Said[peer.ID, roomLine]{From: rm.Author, Msg: roomLine{rm.Seq, rm.Text}})
				}
			}
			invariants.InSentOrder(t, wrote[room], transcript) // N6, stored
		}
		var shown []roomKey3
		for _, e := range m.shown {
			if e.Message != nil && e.Message.Author != m.id {
				shown = append(shown, roomKey3{e.Room, e.Message.Author, e.Message.Seq})
			}
		}
		invariants.ShownOnce(t, shown, stored)   // N6: each stored message shown once
		invariants.ExactlyOnce(t, stored, shown) // ... and none shown that is not stored
	}
}
