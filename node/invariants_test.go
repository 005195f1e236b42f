package node_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/kithnet/kith/protocols/invariants"
	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"
)

// libp2pLingering are goroutines go-libp2p leaves running after a host
// closed, by design: identify's a moment longer, go-flow-metrics' global
// bandwidth sweeper (started by the first relayed circuit) for good.
var libp2pLingering = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"),
	goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
}

// watch is the nothing-lost check of one test over the nodes it started
// (RELIABILITY.md §4.4), through what a user sees: the API's message
// listings and event stream.
//
//   - N3: every direct message a node has delivered (acked) is stored by
//     its receiver exactly once, with the text and sent_at sent;
//   - N6: each node's DM listing and message events, read one sender at a
//     time, are in the order sent, none twice; each node's room logs hold
//     every author's messages in seq order, as written, none twice; every
//     room message a node stored from another author was an event once;
//   - N7: no goroutine or file descriptor left once the nodes closed
//     (NoLeaks), and each node's resource-manager scopes (system, dm,
//     history, files) back to zero (ScopesIdle).
type watch struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*seen // by peer ID: a node restarted on its home is one
	rms   []network.ResourceManager
	// raw holds the nodes whose direct messages the test writes itself
	// (a hostile contact): their sends are not in their listings.
	raw map[string]bool
}

// rawSender says that the test sends n's direct messages itself, frame by
// frame: what n's receivers hold from it is checked for being shown once,
// not against n's listing.
func (w *watch) rawSender(n *node.Node) {
	w.mu.Lock()
	w.raw[n.ID().String()] = true
	w.mu.Unlock()
}

// seen is what one node showed: its listings (the last taken while it
// ran) and the events of every run.
type seen struct {
	dms       []node.MessageInfo
	rooms     map[string][]node.RoomMessageInfo
	dmEvents  []node.MessageInfo
	roomEvent []node.RoomMessageInfo
	// before holds what a run of the node had stored when the watch began
	// to read its events (a node added after it started may receive a
	// message first): DM IDs, and room messages as room/author/seq. Such a
	// message need not have been shown, but is shown once if it was.
	before map[string]bool
}

// nothingLost starts the check: call it first in a DM or room test (N7
// counts from there), and start every node with its start, or hand nodes
// started otherwise to add as soon as they exist.
func nothingLost(t *testing.T) *watch {
	t.Helper()
	invariants.NoLeaks(t, libp2pLingering...) // runs after every cleanup registered later
	w := &watch{t: t, nodes: map[string]*seen{}, raw: map[string]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		for _, rm := range w.rms { // every node has closed
			invariants.ScopesIdle(t, rm, true, chat.DMServiceName, chat.HistoryServiceName, files.ServiceName)
		}
		w.checkDMs()
		w.checkRooms()
	})
	return w
}

// start starts a node as nodetest.Start does, and adds it.
func (w *watch) start(edits ...func(*node.Config)) *node.Node {
	w.t.Helper()
	n := nodetest.Start(w.t, edits...)
	w.add(n)
	return n
}

// add watches n's events from now on and, when the test ends (before n
// closes, if it is still running), reads its listings.
func (w *watch) add(n *node.Node) {
	w.t.Helper()
	id := n.ID().String()
	w.mu.Lock()
	s := w.nodes[id]
	if s == nil {
		s = &seen{before: map[string]bool{}}
		w.nodes[id] = s
	}
	w.rms = append(w.rms, n.Host().Network().ResourceManager())
	w.mu.Unlock()
	events, cancel := n.Events().Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			w.mu.Lock()
			switch {
			case ev.Type == node.EventMessage && ev.Message != nil:
				s.dmEvents = append(s.dmEvents, *ev.Message)
			case ev.Type == node.EventRoom && ev.Kind == node.RoomKindMessage && ev.RoomMessage != nil:
				s.roomEvent = append(s.roomEvent, *ev.RoomMessage)
			}
			w.mu.Unlock()
		}
	}()
	w.noteBefore(n, s)
	w.t.Cleanup(func() {
		ctx := context.Background() // the test's context has ended
		dms, dmErr := n.Messages(ctx, "", 0)
		rooms := map[string][]node.RoomMessageInfo{}
		rs, roomErr := n.Rooms(ctx)
		for _, r := range rs {
			ms, err := n.RoomMessages(ctx, r.Name, 0)
			if err != nil {
				roomErr = err
			}
			rooms[r.Name] = ms
		}
		cancel()
		<-done
		w.mu.Lock()
		defer w.mu.Unlock()
		if dmErr == nil && roomErr == nil { // else n was closed: a later run of its home reads its store
			s.dms, s.rooms = dms, rooms
		}
	})
}

// noteBefore records in s what n has stored by now (after its events are
// subscribed to, so nothing falls between the two).
func (w *watch) noteBefore(n *node.Node, s *seen) {
	ctx := context.Background()
	var keys []string
	dms, _ := n.Messages(ctx, "", 0)
	for _, m := range dms {
		keys = append(keys, m.ID)
	}
	rs, _ := n.Rooms(ctx)
	for _, r := range rs {
		ms, _ := n.RoomMessages(ctx, r.Name, 0)
		for _, m := range ms {
			keys = append(keys, roomKey(r.Name, m.From, m.Seq))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		s.before[k] = true
	}
}

func roomKey(room, author string, seq uint64) string {
	return fmt.Sprintf("%s/%s/%d", room, author, seq)
}

func (w *watch) checkDMs() {
	t := w.t
	t.Helper()
	type line struct{ id, text, sentAt string }
	lineOf := func(m node.MessageInfo) line { return line{m.ID, m.Text, m.SentAt.UTC().String()} }
	for from, fs := range w.nodes {
		sentTo, ackedBy := map[string][]line{}, map[string][]line{}
		for _, m := range fs.dms {
			if m.From == from {
				sentTo[m.To] = append(sentTo[m.To], lineOf(m))
				if m.State == string(chat.StateDelivered) {
					ackedBy[m.To] = append(ackedBy[m.To], lineOf(m))
				}
			}
		}
		for to, ts := range w.nodes {
			if to == from {
				continue
			}
			var stored, mustShow []line
			var transcript, display []invariants.Said[string, line]
			for _, m := range ts.dms {
				if m.From == from && m.To == to {
					stored = append(stored, lineOf(m))
					if !ts.before[m.ID] {
						mustShow = append(mustShow, lineOf(m))
					}
					transcript = append(transcript, invariants.Said[string, line]{From: from, Msg: lineOf(m)})
				}
			}
			var shown []line
			for _, m := range ts.dmEvents {
				if m.From == from && m.To == to && m.State == string(chat.StateReceived) {
					shown = append(shown, lineOf(m))
					display = append(display, invariants.Said[string, line]{From: from, Msg: lineOf(m)})
				}
			}
			invariants.ShownOnce(t, shown, mustShow) // N6: each stored message shown once
			if w.raw[from] {
				continue
			}
			sent := map[string][]line{from: sentTo[to]}
			invariants.ExactlyOnce(t, stored, ackedBy[to]) // N3
			invariants.InSentOrder(t, sent, transcript)    // N6, listed
			invariants.InSentOrder(t, sent, display)       // N6, shown
		}
	}
}

func (w *watch) checkRooms() {
	t := w.t
	t.Helper()
	type line struct {
		seq  uint64
		text string
	}
	type key struct {
		room, author string
		seq          uint64
	}
	wrote := map[string]map[string][]line{} // room -> author -> lines, by seq
	for id, s := range w.nodes {
		for room, ms := range s.rooms {
			for _, m := range ms {
				if m.From == id {
					if wrote[room] == nil {
						wrote[room] = map[string][]line{}
					}
					wrote[room][id] = append(wrote[room][id], line{m.Seq, m.Text})
				}
			}
		}
	}
	for _, byAuthor := range wrote {
		for _, ls := range byAuthor {
			slices.SortFunc(ls, func(a, b line) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	for id, s := range w.nodes {
		var stored, shown, mustShow []key
		for room, ms := range s.rooms {
			var transcript []invariants.Said[string, line]
			for _, m := range ms {
				if _, known := wrote[room][m.From]; known {
					transcript = append(transcript, invariants.Said[string, line]{From: m.From, Msg: line{m.Seq, m.Text}})
				}
				if m.From != id {
					stored = append(stored, key{room, m.From, m.Seq})
					if !s.before[roomKey(room, m.From, m.Seq)] {
						mustShow = append(mustShow, key{room, m.From, m.Seq})
					}
				}
			}
			invariants.InSentOrder(t, wrote[room], transcript) // N6, logged
		}
		for _, m := range s.roomEvent {
			if _, joined := s.rooms[m.Room]; joined && m.From != id {
				shown = append(shown, key{m.Room, m.From, m.Seq})
			}
		}
		invariants.ShownOnce(t, shown, mustShow) // N6: each stored message shown once
		invariants.ExactlyOnce(t, stored, shown) // ... and none shown that is not stored
	}
}
