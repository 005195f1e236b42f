package chat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"go.uber.org/goleak"
)

// The sender keeps one DM stream per peer open between deliveries, closes
// it after DMConfig.StreamIdle, and opens a new one when the kept one is
// gone or broken. These tests watch the streams through a watchedHost (the
// network no longer notifies stream events).

// watchedHost is the host a DM service is given: it counts the streams the
// service opens and reports every stream the service, as sender or
// receiver, closes or resets.
type watchedHost struct {
	host.Host
	opened atomic.Int64
	closed chan closedStream
}

type closedStream struct {
	st    network.Stream
	reset bool // Reset rather than Close
}

func watch(h host.Host) *watchedHost {
	return &watchedHost{Host: h, closed: make(chan closedStream, 1024)}
}

func (h *watchedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	st, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	h.opened.Add(1)
	return &watchedStream{Stream: st, closed: h.closed}, nil
}

func (h *watchedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(st network.Stream) {
		handler(&watchedStream{Stream: st, closed: h.closed})
	})
}

// wantOpened fails unless the service opened want streams.
func (h *watchedHost) wantOpened(t *testing.T, want int64) {
	t.Helper()
	if got := h.opened.Load(); got != want {
		t.Fatalf("sender opened %d streams, want %d", got, want)
	}
}

// noneClosed fails if the service closed or reset a stream.
func (h *watchedHost) noneClosed(t *testing.T, when string) {
	t.Helper()
	select {
	case c := <-h.closed:
		t.Fatalf("a stream closed %s (reset: %v)", when, c.reset)
	default:
	}
}

type watchedStream struct {
	network.Stream
	once   sync.Once
	closed chan<- closedStream
}

func (s *watchedStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(func() { s.closed <- closedStream{s.Stream, false} })
	return err
}

func (s *watchedStream) Reset() error {
	err := s.Stream.Reset()
	s.once.Do(func() { s.closed <- closedStream{s.Stream, true} })
	return err
}

// startWatched starts a DM service on a fresh, watched host.
func startWatched(t *testing.T, cfg chat.DMConfig) (*peerDM, *watchedHost) {
	t.Helper()
	h := watch(newHost(t, nil))
	return startDM(t, h, cfg), h
}

// next waits for the next value on ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("test ended waiting for %s", what)
		panic("unreachable")
	}
}

// mustDeliver sends text from a to p and fails unless it was delivered.
func mustDeliver(t *testing.T, a *peerDM, p peer.ID, text string) chat.Message {
	t.Helper()
	m, err := a.dm.Send(t.Context(), p, text)
	if err != nil || m.State != chat.StateDelivered {
		t.Fatalf("send %q: state %q, err %v; want delivered", text, m.State, err)
	}
	return m
}

func TestDMStreamKeptForSequentialSends(t *testing.T) {
	nothingLost(t)
	a, aw := startWatched(t, chat.DMConfig{})
	b, bw := startWatched(t, chat.DMConfig{})
	know(a.h, b.h)
	go drain(t, a.event)
	go drain(t, b.event)
	const n = 50
	for i := range n {
		mustDeliver(t, a, b.h.ID(), fmt.Sprint(i))
	}
	aw.wantOpened(t, 1)
	aw.noneClosed(t, "on the sender between sends")
	bw.noneClosed(t, "on the receiver between sends")
	if got := len(b.store.received()); got != n {
		t.Fatalf("bob stored %d messages, want %d", got, n)
	}
}

func TestDMStreamClosedWhenIdle(t *testing.T) {
	nothingLost(t)
	const idle = 100 * time.Millisecond
	a, aw := startWatched(t, chat.DMConfig{StreamIdle: idle})
	b, bw := startWatched(t, chat.DMConfig{})
	know(a.h, b.h)
	start := time.Now()
	mustDeliver(t, a, b.h.ID(), "one")
	c := next(t, aw.closed, "the sender to close its idle stream")
	if d := time.Since(start); c.reset || d < idle || d > idle+5*time.Second {
		t.Fatalf("idle stream closed (reset: %v) %v after the send began, want closed after %v", c.reset, d, idle)
	}
	// The receiver saw the end of the stream, and closed its side too.
	if c := next(t, bw.closed, "the receiver to close its end"); c.reset {
		t.Fatal("the receiver reset the stream")
	}
	mustDeliver(t, a, b.h.ID(), "two")
	aw.wantOpened(t, 2)
}

// A receiver restarts (same key, new port) between two sends: the second is
// delivered on a new stream, and stored exactly once.
func TestDMReceiverRestartBetweenSends(t *testing.T) {
	nothingLost(t)
	a, aw := startWatched(t, chat.DMConfig{})
	key, _, _ := crypto.GenerateEd25519Key(nil)
	store := &memStore{} // survives the restart, as a database would
	startB := func() (host.Host, *chat.DMService) {
		h := newHost(t, key)
		trackDM(t, h, store, nil)
		dm, err := chat.NewDM(h, store, chat.DMConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dm.Close() })
		know(a.h, h)
		return h, dm
	}
	bh, bdm := startB()
	m1 := mustDeliver(t, a, bh.ID(), "before")
	bdm.Close()
	bh.Close()
	bh, _ = startB()
	m2 := mustDeliver(t, a, bh.ID(), "after")
	got := store.received()
	if len(got) != 2 || got[0].ID != m1.ID || got[1].ID != m2.ID {
		t.Fatalf("bob stored %+v, want each message once", got)
	}
	aw.wantOpened(t, 2)
}

// connectBefore connects a to b and returns once a has announced the
// connection, so that a DM service started on a afterwards does not hear of
// it and kick its outbox.
func connectBefore(t *testing.T, a, b host.Host) {
	t.Helper()
	sub, err := a.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	know(a, b)
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for {
		e := next(t, sub.Out(), "the connection event").(event.EvtPeerConnectednessChanged)
		if e.Peer == b.ID() && e.Connectedness == network.Connected {
			return
		}
	}
}

// scanStore reports the outbox's passes over every peer's mail.
type scanStore struct {
	*memStore
	scanned chan struct{}
}

func (s *scanStore) Outbox(ctx context.Context, p peer.ID) ([]chat.Message, error) {
	if p == "" {
		select {
		case s.scanned <- struct{}{}:
		default:
		}
	}
	return s.memStore.Outbox(ctx, p)
}

// startQuietOutbox starts a DM service on h whose outbox has made its first
// pass, with nothing to send, and makes the next an hour later.
func startQuietOutbox(t *testing.T, h host.Host) *peerDM {
	store := &scanStore{memStore: &memStore{}, scanned: make(chan struct{}, 1)}
	trackDM(t, h, store.memStore, nil)
	dm, err := chat.NewDM(h, store, chat.DMConfig{RetryMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Close() })
	next(t, store.scanned, "the outbox's first pass")
	return &peerDM{h: h, store: store.memStore, dm: dm, event: make(chan chat.Message, 1024)}
}

// rawReceiver serves DM streams on h with serve, given the stream's number
// (from 1), a frame reader and writer.
func rawReceiver(t *testing.T, h host.Host, serve func(n int, st network.Stream, r *protocols.DMReader, w *protocols.DMWriter)) {
	var streams atomic.Int32
	h.SetStreamHandler(protocols.DMProtocol, func(st network.Stream) {
		st.SetDeadline(time.Now().Add(10 * time.Second))
		serve(int(streams.Add(1)), st, protocols.NewDMReader(st), protocols.NewDMWriter(st))
	})
}

// readMessage reads a Message, tells seen (if set) its ID and, when ack is
// true, acks it.
func readMessage(r *protocols.DMReader, w *protocols.DMWriter, ack bool, seen func(chat.MessageID)) error {
	f, err := r.Read()
	if err != nil {
		return err
	}
	if f.Message == nil {
		return errors.New("not a message")
	}
	if seen != nil {
		seen(f.Message.ID)
	}
	if ack {
		err = w.Write(protocols.DMFrame{Ack: &protocols.DMAck{ID: f.Message.ID}})
	}
	return err
}

// A kept stream that breaks under a message (the receiver read it and went
// away without an ack) is given up and the message sent again, once, on a
// new stream: delivered if that works, queued if not.
func TestDMKeptStreamBrokenRetriedOnce(t *testing.T) {
	nothingLost(t)
	for _, tt := range []struct {
		name      string
		secondOK  bool // the second stream acks
		wantState chat.State
	}{
		{"retry delivers", true, chat.StateDelivered},
		{"retry fails too", false, chat.StateQueued},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Only Send delivers: the hosts are connected before the service
			// starts (no kick), the outbox has made its first pass when the
			// test sends, and its next is an hour away.
			aw, bh := watch(newHost(t, nil)), newHost(t, nil)
			connectBefore(t, aw, bh)
			a := startQuietOutbox(t, aw)
			var mu sync.Mutex
			var read []chat.MessageID // every message the receiver read, in order
			seen := func(id chat.MessageID) {
				mu.Lock()
				read = append(read, id)
				mu.Unlock()
			}
			rawReceiver(t, bh, func(n int, st network.Stream, r *protocols.DMReader, w *protocols.DMWriter) {
				defer st.Reset()
				for i := 0; ; i++ {
					ack := (n == 1 && i == 0) || (n > 1 && tt.secondOK)
					if err := readMessage(r, w, ack, seen); err != nil || !ack {
						return // without an ack, the reset breaks the stream under the message
					}
				}
			})
			m1 := mustDeliver(t, a, bh.ID(), "one")
			m2, err := a.dm.Send(t.Context(), bh.ID(), "two")
			if err != nil || m2.State != tt.wantState {
				t.Fatalf("second send: state %q, err %v; want %q", m2.State, err, tt.wantState)
			}
			aw.wantOpened(t, 2)
			mu.Lock()
			defer mu.Unlock()
			if want := []chat.MessageID{m1.ID, m2.ID, m2.ID}; !slices.Equal(read, want) {
				t.Fatalf("receiver read %v, want %v (the second message twice)", read, want)
			}
			out, _ := a.store.Outbox(t.Context(), "")
			if queued := len(out) == 1 && out[0].ID == m2.ID; queued != (tt.wantState == chat.StateQueued) {
				t.Fatalf("outbox %+v after the second send (%q)", out, tt.wantState)
			}
		})
	}
}

// An older receiver answers INTERNAL when its deadline passes between
// frames. The sender must not read that Error, already there when it reuses
// the stream, as the refusal of its next message: it gives the stream up.
func TestDMKeptStreamWithStaleErrorGivenUp(t *testing.T) {
	nothingLost(t)
	a, aw := startWatched(t, chat.DMConfig{})
	bh := newHost(t, nil)
	know(a.h, bh)
	stale := make(chan struct{})
	rawReceiver(t, bh, func(n int, st network.Stream, r *protocols.DMReader, w *protocols.DMWriter) {
		defer st.Reset()
		if err := readMessage(r, w, true, nil); err != nil {
			return
		}
		if n == 1 {
			w.Write(protocols.DMFrame{Error: &protocols.RemoteError{Code: protocols.CodeInternal, Message: "deadline"}})
			st.Close()
			close(stale)
			return
		}
		r.Read() // wait for the sender to close
	})
	mustDeliver(t, a, bh.ID(), "one")
	next(t, stale, "the receiver's stale error")
	// A ping from the receiver, on the same connection, comes after the
	// Error: once answered, the Error has reached the sender's stream.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if r := next(t, ping.Ping(ctx, bh, a.h.ID()), "a ping"); r.Error != nil {
		t.Fatal(r.Error)
	}
	m := mustDeliver(t, a, bh.ID(), "two")
	if all, _ := a.store.Messages(t.Context(), chat.Filter{}); all[1].ID != m.ID || all[1].State != chat.StateDelivered {
		t.Fatalf("sender's record %+v", all[1])
	}
	aw.wantOpened(t, 2)
}

// A receiver whose deadline is shorter than the sender's StreamIdle closes
// the kept stream; the next message still goes through, on a new stream.
func TestDMKeptStreamClosedByReceiver(t *testing.T) {
	nothingLost(t)
	a, aw := startWatched(t, chat.DMConfig{StreamIdle: time.Hour})
	b, bw := startWatched(t, chat.DMConfig{IdleTimeout: 100 * time.Millisecond})
	know(a.h, b.h)
	mustDeliver(t, a, b.h.ID(), "one")
	next(t, bw.closed, "the receiver to close the idle stream")
	mustDeliver(t, a, b.h.ID(), "two")
	if got := len(b.store.received()); got != 2 {
		t.Fatalf("bob stored %d messages, want 2", got)
	}
	aw.wantOpened(t, 2)
}

// A refusal on a kept stream is reported, the receiver closes that stream,
// and the next message goes on a new one.
func TestDMRefusalOnKeptStream(t *testing.T) {
	nothingLost(t)
	var blocked atomic.Bool
	a, aw := startWatched(t, chat.DMConfig{})
	b := startDM(t, newHost(t, nil), chat.DMConfig{Authorize: func(peer.ID) error {
		if blocked.Load() {
			return chat.ErrBlocked
		}
		return nil
	}})
	know(a.h, b.h)
	mustDeliver(t, a, b.h.ID(), "one")
	blocked.Store(true)
	m, err := a.dm.Send(t.Context(), b.h.ID(), "two")
	var re *protocols.RemoteError
	if !errors.As(err, &re) || re.Code != protocols.CodeBlocked || m.State != chat.StateFailed {
		t.Fatalf("send while blocked: state %q, err %v; want failed, BLOCKED", m.State, err)
	}
	aw.wantOpened(t, 1)
	blocked.Store(false)
	mustDeliver(t, a, b.h.ID(), "three")
	aw.wantOpened(t, 2)
	got := b.store.received()
	if len(got) != 2 || got[0].Text != "one" || got[1].Text != "three" {
		t.Fatalf("bob stored %+v, want one and three", got)
	}
}

// With an idle period shorter than the time between sends, the idle closer
// and the deliveries race for the kept stream; every message still arrives
// once.
func TestDMStreamIdleRacesSends(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{StreamIdle: time.Millisecond})
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(a.h, b.h)
	go drain(t, a.event)
	go drain(t, b.event)
	sendAllConcurrently(t, a, b, 4, 50)
}

// Close closes the kept streams and leaves no goroutine of the service
// behind.
func TestDMCloseLeavesNothing(t *testing.T) {
	nothingLost(t)
	aw, bh := watch(newHost(t, nil)), newHost(t, nil)
	know(aw, bh)
	if err := aw.Connect(t.Context(), peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	baseline := goleak.IgnoreCurrent()
	a := startDM(t, aw, chat.DMConfig{})
	b := startDM(t, bh, chat.DMConfig{})
	for _, text := range []string{"one", "two", "three"} {
		mustDeliver(t, a, bh.ID(), text)
	}
	aw.wantOpened(t, 1)
	aw.noneClosed(t, "before Close")
	a.dm.Close()
	if c := next(t, aw.closed, "Close to close the kept stream"); c.reset {
		t.Fatal("Close reset the kept stream")
	}
	b.dm.Close()
	goleak.VerifyNone(t, baseline,
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"))
}
