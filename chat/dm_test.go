package chat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"
)

// newHost starts a libp2p host on 127.0.0.1 with key (a fresh one if nil).
func newHost(t testing.TB, key crypto.PrivKey) host.Host {
	t.Helper()
	if key == nil {
		key, _, _ = crypto.GenerateEd25519Key(nil)
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// peerDM is a host with a DM service and its store.
type peerDM struct {
	h     host.Host
	store *memStore
	dm    *chat.DMService
	mu    sync.Mutex
	seen  []chat.Message // OnChange calls
	event chan chat.Message
}

// startDM starts a DM service on h with a fresh store; the test's
// nothingLost check covers it.
func startDM(t *testing.T, h host.Host, cfg chat.DMConfig, opts ...chat.DMOption) *peerDM {
	t.Helper()
	p := &peerDM{h: h, store: &memStore{}, event: make(chan chat.Message, 1024)}
	trackDM(t, h, p.store, p.shown)
	dm, err := chat.NewDM(h, p.store, cfg, append([]chat.DMOption{chat.WithOnChange(func(m chat.Message) {
		p.mu.Lock()
		p.seen = append(p.seen, m)
		p.mu.Unlock()
		p.event <- m
	})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Close() })
	p.dm = dm
	return p
}

// shown returns every change p's service reported so far.
func (p *peerDM) shown() []chat.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func know(a, b host.Host) {
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.PermanentAddrTTL)
}

// waitFor reads p's change events until f matches one.
func (p *peerDM) waitFor(t *testing.T, f func(chat.Message) bool) chat.Message {
	t.Helper()
	for {
		select {
		case m := <-p.event:
			if f(m) {
				return m
			}
		case <-time.After(waitBound):
			t.Fatal("test ended waiting for a message event")
		}
	}
}

func TestDMDeliveredAndAcked(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{})
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(a.h, b.h)
	m, err := a.dm.Send(t.Context(), b.h.ID(), "hello, bob ✓")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != chat.StateDelivered {
		t.Fatalf("state %q, want delivered", m.State)
	}
	got := b.store.received()
	if len(got) != 1 || got[0].Text != "hello, bob ✓" || got[0].Peer != a.h.ID() || got[0].ID != m.ID {
		t.Fatalf("bob stored %+v", got)
	}
	if !got[0].SentAt.Equal(m.SentAt) {
		t.Fatalf("sent_at %v, want %v", got[0].SentAt, m.SentAt)
	}
	if out, _ := a.store.Outbox(t.Context(), ""); len(out) != 0 {
		t.Fatalf("outbox not empty after delivery: %+v", out)
	}
	b.waitFor(t, func(m chat.Message) bool { return m.State == chat.StateReceived })
}

// A message to an offline peer is queued, then delivered exactly once when
// the peer comes up.
func TestDMQueuedThenDeliveredOnce(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{SendTimeout: 500 * time.Millisecond, RetryMin: 50 * time.Millisecond})
	bKey, _, _ := crypto.GenerateEd25519Key(nil)
	bOff := newHost(t, bKey)
	know(a.h, bOff)
	bOff.Close() // b is offline; its addresses are stale

	m, err := a.dm.Send(t.Context(), bOff.ID(), "are you there?")
	if err != nil || m.State != chat.StateQueued {
		t.Fatalf("send to offline peer: %+v, %v; want queued", m, err)
	}
	b := startDM(t, newHost(t, bKey), chat.DMConfig{})
	know(a.h, b.h)
	if err := a.h.Connect(t.Context(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, func(x chat.Message) bool { return x.ID == m.ID && x.State == chat.StateDelivered })
	got := b.store.received()
	if len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("bob stored %d messages, want exactly 1: %+v", len(got), got)
	}
}

// A retried message (its ack was lost) is stored once and acked again.
func TestDMRetryStoredOnce(t *testing.T) {
	nothingLost(t)
	a := newHost(t, nil)
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(a, b.h)
	msg := protocols.DMMessage{ID: chat.NewMessageID(), SentAt: time.Now(), Text: "once"}
	for range 3 {
		st, err := a.NewStream(t.Context(), b.h.ID(), protocols.DMProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocols.NewDMWriter(st).Write(protocols.DMFrame{Message: &msg}); err != nil {
			t.Fatal(err)
		}
		f, err := protocols.NewDMReader(st).Read()
		if err != nil || f.Ack == nil || f.Ack.ID != msg.ID {
			t.Fatalf("ack: %+v %v", f, err)
		}
		st.Close()
	}
	if got := b.store.received(); len(got) != 1 {
		t.Fatalf("stored %d copies, want 1", len(got))
	}
}

// rawMessageFrame encodes a length-prefixed Frame holding a Message built
// field by field, so tests can send what DMWriter refuses to.
func rawMessageFrame(version uint64, id []byte, text string) []byte {
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType)
	m = protowire.AppendVarint(m, version)
	m = protowire.AppendTag(m, 2, protowire.BytesType)
	m = protowire.AppendBytes(m, id)
	m = protowire.AppendTag(m, 3, protowire.VarintType)
	m = protowire.AppendVarint(m, uint64(time.Now().UnixMilli()))
	m = protowire.AppendTag(m, 4, protowire.BytesType)
	m = protowire.AppendString(m, text)
	var f []byte
	f = protowire.AppendTag(f, 1, protowire.BytesType)
	f = protowire.AppendBytes(f, m)
	return append(protowire.AppendVarint(nil, uint64(len(f))), f...)
}

func withBody(prefix []byte, body ...[]byte) []byte {
	return bytes.Join(append([][]byte{prefix}, body...), nil)
}

// Each bad input ends the stream with the right coded error, and the
// receiver keeps serving others.
func TestDMHostileFramesRefused(t *testing.T) {
	nothingLost(t)
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	a := newHost(t, nil)
	know(a, b.h)
	id := make([]byte, 16)
	tests := []struct {
		name string
		raw  []byte
		want protocols.ErrorCode
	}{
		{"length prefix 2^63", protowire.AppendVarint(nil, 1<<63), protocols.CodeTooLarge},
		{"length prefix 2^32", protowire.AppendVarint(nil, 1<<32), protocols.CodeTooLarge},
		{"one over the frame cap", protowire.AppendVarint(nil, protocols.MaxDMFrame+1), protocols.CodeTooLarge},
		{"11-byte varint", bytes.Repeat([]byte{0xff}, 11), protocols.CodeMalformed},
		{"garbage body", withBody([]byte{4}, []byte{0xff, 0xff, 0xff, 0xff}), protocols.CodeMalformed},
		{"15-byte id", rawMessageFrame(1, id[:15], "x"), protocols.CodeMalformed},
		{"unknown version", rawMessageFrame(2, id, "x"), protocols.CodeUnsupportedVersion},
		{"invalid utf-8", rawMessageFrame(1, id, "\xff\xfe"), protocols.CodeMalformed},
		{"an ack instead of a message", ackFrame(t), protocols.CodeUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := a.NewStream(t.Context(), b.h.ID(), protocols.DMProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			st.Write(tt.raw)
			f, err := protocols.NewDMReader(st).Read()
			if err != nil || f.Error == nil || f.Error.Code != tt.want {
				t.Fatalf("got %+v %v, want error code %v", f, err, tt.want)
			}
		})
	}
	if len(b.store.received()) != 0 {
		t.Fatal("a hostile frame was stored")
	}
	// Still serving.
	sender := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(sender.h, b.h)
	if m, err := sender.dm.Send(t.Context(), b.h.ID(), "still there?"); err != nil || m.State != chat.StateDelivered {
		t.Fatalf("after hostile frames: %+v %v", m, err)
	}
}

func ackFrame(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := protocols.NewDMWriter(&buf).Write(protocols.DMFrame{Ack: &protocols.DMAck{}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A peer that opens a stream and sends nothing is cut off at the deadline,
// and the handler leaves no goroutine behind.
func TestDMStalledStreamClosedAtDeadline(t *testing.T) {
	nothingLost(t)
	b := startDM(t, newHost(t, nil), chat.DMConfig{FirstFrameTimeout: 200 * time.Millisecond})
	a := newHost(t, nil)
	know(a, b.h)
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	baseline := goleak.IgnoreCurrent()
	st, err := a.NewStream(t.Context(), b.h.ID(), protocols.DMProtocol)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is written. The receiver closes the stream, without an Error:
	// there is no message to refuse.
	f, err := protocols.NewDMReader(st).Read()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stalled stream got %+v, %v; want the end of the stream", f, err)
	}
	st.Reset()
	// A host's identify service starts its push goroutine from another
	// goroutine; under load that can happen after the baseline was taken.
	goleak.VerifyNone(t, baseline,
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/protocol/identify.(*idService).loop.func1"))
}

func TestDMRefusedByPolicy(t *testing.T) {
	nothingLost(t)
	for _, tt := range []struct {
		name   string
		policy error
		want   protocols.ErrorCode
	}{
		{"not a contact", chat.ErrNotAllowed, protocols.CodeNotAllowed},
		{"blocked", chat.ErrBlocked, protocols.CodeBlocked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := startDM(t, newHost(t, nil), chat.DMConfig{})
			b := startDM(t, newHost(t, nil), chat.DMConfig{Authorize: func(peer.ID) error {
				return fmt.Errorf("%w: go away", tt.policy)
			}})
			know(a.h, b.h)
			m, err := a.dm.Send(t.Context(), b.h.ID(), "let me in")
			var re *protocols.RemoteError
			if !errors.As(err, &re) || re.Code != tt.want {
				t.Fatalf("send: %v, want remote error %v", err, tt.want)
			}
			if out, _ := a.store.Outbox(t.Context(), ""); len(out) != 0 {
				t.Fatalf("a refused message must leave the outbox: %+v", out)
			}
			all, _ := a.store.Messages(t.Context(), chat.Filter{})
			if len(all) != 1 || all[0].ID != m.ID || all[0].State != chat.StateFailed {
				t.Fatalf("sender's record: %+v", all)
			}
			if len(b.store.received()) != 0 {
				t.Fatal("refused message stored")
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	for _, tt := range []struct {
		text string
		want error
	}{
		{"", chat.ErrEmpty},
		{string(bytes.Repeat([]byte("a"), protocols.MaxDMText+1)), chat.ErrTooLong},
		{"\xff", chat.ErrNotUTF8},
		{string(bytes.Repeat([]byte("a"), protocols.MaxDMText)), nil},
	} {
		if err := chat.CheckText(tt.text); !errors.Is(err, tt.want) {
			t.Errorf("CheckText(%d bytes): %v, want %v", len(tt.text), err, tt.want)
		}
	}
}

// Many messages in a row arrive in order, on one stream each Send.
func TestDMManyInOrder(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{})
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(a.h, b.h)
	const n = 100
	for i := range n {
		if m, err := a.dm.Send(t.Context(), b.h.ID(), fmt.Sprint(i)); err != nil || m.State != chat.StateDelivered {
			t.Fatalf("message %d: %+v %v", i, m, err)
		}
	}
	got := b.store.received()
	for i, m := range got {
		if m.Text != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Text)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d, want %d", len(got), n)
	}
}

// Concurrent Sends to one peer share deliveries: a message can go out on
// another Send's stream. Each Send still reports its message delivered, and
// every message arrives once.
func TestDMConcurrentSendsDelivered(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{})
	b := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(a.h, b.h)
	go drain(t, a.event) // more events than the buffer holds
	go drain(t, b.event)
	sendAllConcurrently(t, a, b, 8, 25)
	if out, _ := a.store.Outbox(t.Context(), ""); len(out) != 0 {
		t.Fatalf("outbox not empty: %d messages", len(out))
	}
}

// drain discards events until the test ends.
func drain(t *testing.T, events <-chan chat.Message) {
	for {
		select {
		case <-events:
		case <-t.Context().Done():
			return
		}
	}
}

// gatedStore holds each incoming message until the test lets it through.
type gatedStore struct {
	*memStore
	arrived chan string   // the text of each message held
	release chan struct{} // one send lets one message through
}

func (s *gatedStore) AddIncoming(ctx context.Context, m chat.Message) (bool, error) {
	s.arrived <- m.Text
	select {
	case <-s.release:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.memStore.AddIncoming(ctx, m)
}

// A Send whose message went out on another Send's delivery returns as soon
// as its message is acked, not when that delivery ends: it does not queue
// for the peer behind it.
func TestDMSendReturnsWhenItsMessageIsAcked(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{})
	gate := &gatedStore{memStore: &memStore{}, arrived: make(chan string, 16), release: make(chan struct{})}
	bh := newHost(t, nil)
	trackDM(t, bh, gate.memStore, nil)
	bdm, err := chat.NewDM(bh, gate, chat.DMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bdm.Close() })
	know(a.h, bh)
	if err := a.h.Connect(t.Context(), peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		m   chat.Message
		err error
	}
	results := make(chan result, 4)
	send := func(text string) {
		go func() {
			m, err := a.dm.Send(t.Context(), bh.ID(), text)
			results <- result{m, err}
		}()
	}
	// "1" goes out alone and is held; "2", "3" and "4" queue behind it, then
	// go out together on the next delivery.
	send("1")
	if got := <-gate.arrived; got != "1" {
		t.Fatalf("first message held is %q, want 1", got)
	}
	for _, text := range []string{"2", "3", "4"} {
		send(text)
	}
	for range 3 {
		a.waitFor(t, func(m chat.Message) bool { return m.State == chat.StateQueued && m.Text != "1" })
	}
	gate.release <- struct{}{}
	x := <-gate.arrived
	gate.release <- struct{}{}
	y := <-gate.arrived
	gate.release <- struct{}{}
	z := <-gate.arrived // held: the delivery of x, y and z is not over
	// One of x's and y's Sends at least did not run that delivery, and
	// returns now.
	timeout := time.After(5 * time.Second) // less than SendTimeout
	var done []result
	for !slices.ContainsFunc(done, func(r result) bool { return r.m.Text == x || r.m.Text == y }) {
		select {
		case r := <-results:
			done = append(done, r)
		case <-timeout:
			t.Fatalf("no Send of %q or %q returned while %q was held; returned: %+v", x, y, z, done)
		}
	}
	gate.release <- struct{}{}
	for len(done) < 4 {
		done = append(done, <-results)
	}
	for _, r := range done {
		if r.err != nil || r.m.State != chat.StateDelivered {
			t.Errorf("send %q: state %q, err %v; want delivered", r.m.Text, r.m.State, r.err)
		}
	}
	if got := len(gate.received()); got != 4 {
		t.Fatalf("bob stored %d messages, want 4", got)
	}
}

// A sender blocked while its stream is open is refused on that stream: the
// policy applies to every message, not only when the stream opens.
func TestDMPolicyAppliedToEachMessage(t *testing.T) {
	nothingLost(t)
	var blocked atomic.Bool
	b := startDM(t, newHost(t, nil), chat.DMConfig{Authorize: func(peer.ID) error {
		if blocked.Load() {
			return chat.ErrBlocked
		}
		return nil
	}})
	a := newHost(t, nil)
	know(a, b.h)
	st, err := a.NewStream(t.Context(), b.h.ID(), protocols.DMProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	w, r := protocols.NewDMWriter(st), protocols.NewDMReader(st)
	first := protocols.DMMessage{ID: chat.NewMessageID(), SentAt: time.Now(), Text: "before"}
	if err := w.Write(protocols.DMFrame{Message: &first}); err != nil {
		t.Fatal(err)
	}
	if f, err := r.Read(); err != nil || f.Ack == nil {
		t.Fatalf("first message: %+v %v, want an ack", f, err)
	}
	blocked.Store(true)
	second := protocols.DMMessage{ID: chat.NewMessageID(), SentAt: time.Now(), Text: "after"}
	if err := w.Write(protocols.DMFrame{Message: &second}); err != nil {
		t.Fatal(err)
	}
	if f, err := r.Read(); err != nil || f.Error == nil || f.Error.Code != protocols.CodeBlocked {
		t.Fatalf("second message: %+v %v, want BLOCKED", f, err)
	}
	if got := b.store.received(); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("bob stored %+v, want only the first message", got)
	}
}

// failingStore fails every AddIncoming: the receiver answers INTERNAL.
type failingStore struct{ *memStore }

func (failingStore) AddIncoming(context.Context, chat.Message) (bool, error) {
	return false, errors.New("disk on fire")
}

// A receiver that cannot store a message right now defers it: the sender
// keeps it queued (not failed) and delivers it once the receiver can.
func TestDMDeferredMessageStaysQueued(t *testing.T) {
	nothingLost(t)
	a := startDM(t, newHost(t, nil), chat.DMConfig{})
	bKey, _, _ := crypto.GenerateEd25519Key(nil)
	bh := newHost(t, bKey)
	bdm, err := chat.NewDM(bh, failingStore{&memStore{}}, chat.DMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	know(a.h, bh)
	m, err := a.dm.Send(t.Context(), bh.ID(), "later, then")
	if err != nil || m.State != chat.StateQueued {
		t.Fatalf("send to a receiver whose store fails: %+v %v, want queued", m, err)
	}
	if out, _ := a.store.Outbox(t.Context(), ""); len(out) != 1 {
		t.Fatalf("outbox %+v, want the message still queued", out)
	}
	bdm.Close()
	b := startDM(t, bh, chat.DMConfig{}) // the receiver recovers
	a.dm.Kick(bh.ID())
	a.waitFor(t, func(x chat.Message) bool { return x.ID == m.ID && x.State == chat.StateDelivered })
	if got := b.store.received(); len(got) != 1 {
		t.Fatalf("receiver stored %d, want 1", len(got))
	}
}

// sendAllConcurrently has senders goroutines send each messages from a to b at
// once, and fails unless every Send reports delivered and b stored every
// message once.
func sendAllConcurrently(t *testing.T, a, b *peerDM, senders, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m, err := a.dm.Send(t.Context(), b.h.ID(), fmt.Sprint(g, "/", i))
				if err != nil || m.State != chat.StateDelivered {
					t.Errorf("sender %d message %d: state %q, err %v; want delivered", g, i, m.State, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(b.store.received()); got != senders*each {
		t.Fatalf("bob stored %d messages, want %d", got, senders*each)
	}
}
