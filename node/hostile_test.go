package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/hostile"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// The hostile peer against real nodes (RELIABILITY.md 4.3): the attacker is
// a contact of the victim, an authenticated peer gone bad, so that every
// frame reaches the decoders a stranger's would not; an honest contact
// checks afterwards that the victim still serves.

// answerBound bounds the wait for an answer: a hang fails the test.
const answerBound = 10 * time.Second

// arena is a victim node, a hostile contact of it and an honest contact.
type arena struct {
	victim, honest *node.Node
	atk            *hostile.Attacker
	events         <-chan node.Event // the victim's
}

// newArena starts the arena and the test's nothing-lost check (call it
// first).
func newArena(t *testing.T) *arena {
	t.Helper()
	w := nothingLost(t)
	v, m, h := w.start(), w.start(), w.start()
	w.rawSender(m)
	befriend(t, v, m, "victim", "mal")
	befriend(t, v, h, "victim", "honest")
	events, cancel := v.Events().Subscribe()
	t.Cleanup(cancel)
	return &arena{victim: v, honest: h, atk: hostile.New(m.Host()), events: events}
}

// specs are the first frames of each exchange a stranger or contact may
// open on the victim.
func specs() []hostile.Spec {
	var id [16]byte
	rand.Read(id[:])
	return []hostile.Spec{
		hostile.DM(id, time.Now(), "hostile"),
		hostile.FilesOffer(id, []byte("a manifest the framing does not parse")),
		hostile.FilesFetch(protocols.Hash{1}, bytes.Repeat([]byte{2}, 16)),
		hostile.History("/kith/room/1/open/lobby", 10),
	}
}

// attack opens a stream on spec's protocol, writes b (then closes its write
// side when closeWrite), and returns the victim's answer.
func (a *arena) attack(t *testing.T, spec hostile.Spec, b []byte, closeWrite bool) hostile.Answer {
	t.Helper()
	ans, _ := a.attackMeasured(t, spec, b, closeWrite)
	return ans
}

// attackMeasured is attack, and says how many bytes the process allocated
// from the write to the answer (not while opening the stream).
func (a *arena) attackMeasured(t *testing.T, spec hostile.Spec, b []byte, closeWrite bool) (hostile.Answer, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), answerBound)
	defer cancel()
	st, err := a.atk.Open(ctx, a.victim.ID(), spec.ID)
	if err != nil {
		t.Fatalf("%s: %v", spec.Name, err)
	}
	defer st.Reset()
	before := totalAlloc()
	if err := st.Send(b); err != nil {
		t.Fatalf("%s: %v", spec.Name, err)
	}
	if closeWrite {
		st.CloseWrite()
	}
	ans := st.Answer(spec, answerBound)
	return ans, totalAlloc() - before
}

// wantCode fails unless ans is an Error frame with code.
func wantCode(t *testing.T, what string, ans hostile.Answer, code protocols.ErrorCode) {
	t.Helper()
	switch {
	case ans.Error == nil:
		t.Errorf("%s: answer %+v, want an Error %v", what, ans, code)
	case ans.Error.Code != code:
		t.Errorf("%s: Error %v (%q), want %v", what, ans.Error.Code, ans.Error.Message, code)
	}
}

// stillServes checks that the victim delivers an honest contact's message
// and takes its file offer.
func (a *arena) stillServes(t *testing.T) {
	t.Helper()
	text := "still there? " + time.Now().Format(time.RFC3339Nano)
	if _, err := a.honest.SendMessage(t.Context(), "victim", text); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, a.events, func(m node.MessageInfo) bool { return m.Text == text })
	src := writeRandom(t, t.TempDir(), "honest.bin", 1000)
	if _, err := a.honest.SendFiles(t.Context(), "victim", []string{src}); err != nil {
		t.Fatal(err)
	}
	waitTransfer(t, a.events, "", func(ev node.Event) bool { return ev.Kind == node.TransferOffer })
}

// totalAlloc is the bytes the process allocated so far.
func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// B3: a length prefix above the limit is refused from the prefix alone,
// TOO_LARGE, before anything is allocated for it; the victim serves on.
func TestHostileOversizedFrames(t *testing.T) {
	a := newArena(t)
	for _, spec := range specs() {
		for _, n := range []uint64{1 << 63, 1 << 32, uint64(spec.Limit) + 1} {
			ans, grew := a.attackMeasured(t, spec, spec.Oversized(n), false)
			wantCode(t, spec.Name, ans, protocols.CodeTooLarge)
			// The whole process (three nodes) allocated less than 1 MiB
			// while the victim read a claim of up to 2^63 bytes.
			if grew > 1<<20 {
				t.Errorf("%s, length %d: the process allocated %d bytes meanwhile; want < 1 MiB", spec.Name, n, grew)
			}
			t.Logf("%s, length %d: %v in %v, %d bytes allocated meanwhile", spec.Name, n, ans.Error, ans.Elapsed, grew)
		}
	}
	a.stillServes(t)
}

// B3: a length within the limit is no licence to allocate it before the
// bytes arrive: a contact's claim of a 16 MiB Offer that it never sends
// costs the victim little.
func TestHostileClaimedFrameNotAllocatedUpFront(t *testing.T) {
	a := newArena(t)
	spec := specs()[1] // files-offer: the largest limit, MaxFilesFrame
	const claims = 4
	var grew uint64
	for range claims {
		ans, g := a.attackMeasured(t, spec, spec.Oversized(protocols.MaxFilesFrame), true)
		wantCode(t, "claimed offer, stream ended", ans, protocols.CodeMalformed)
		grew += g
	}
	t.Logf("%d claims of %d bytes: %d bytes allocated", claims, protocols.MaxFilesFrame, grew)
	if grew > 4<<20 {
		t.Errorf("%d claims of %d bytes never sent made the process allocate %d bytes; want < 4 MiB",
			claims, protocols.MaxFilesFrame, grew)
	}
}

// B4: malformed varints and protobuf are a coded MALFORMED, within the
// bound (no hang), and the victim serves on (no panic).
func TestHostileMalformedFrames(t *testing.T) {
	a := newArena(t)
	for _, spec := range specs() {
		for _, tc := range []struct {
			name       string
			in         []byte
			closeWrite bool
		}{
			{"11-byte varint", spec.LongVarint(), false},
			{"non-minimal varint", append([]byte{0x85, 0x00}, spec.Valid()[1:]...), false},
			{"wrong wire type", spec.WrongWireType(), false},
			{"truncated field", spec.TruncatedField(), false},
			{"stream ends inside the frame", spec.EndsInside(), true},
			{"empty frame", []byte{0}, false},
			{"unknown part only", hostile.Frame(hostile.Field(nil, 15, []byte("?"))), false},
		} {
			ans := a.attack(t, spec, tc.in, tc.closeWrite)
			wantCode(t, spec.Name+": "+tc.name, ans, protocols.CodeMalformed)
		}
	}
	a.stillServes(t)
}

// B5: multistream refuses protocol IDs the victim does not speak, and an
// unknown in-band version is the explicit UNSUPPORTED_VERSION, after which
// the victim reads nothing more and keeps nothing.
func TestHostileUnknownVersions(t *testing.T) {
	a := newArena(t)
	for _, id := range []protocol.ID{"/kith/files/9.9.9", "/kith/dm/2.0.0", "/kith/history/2.0.0", "/kith/dm/0.9.0"} {
		_, err := a.atk.Open(t.Context(), a.victim.ID(), id)
		if !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
			t.Errorf("open %s: %v, want multistream's not supported", id, err)
		}
	}
	for _, spec := range specs() {
		for _, v := range []uint64{0, 2, 1 << 32} {
			ctx, cancel := context.WithTimeout(t.Context(), answerBound)
			st, err := a.atk.Open(ctx, a.victim.ID(), spec.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The frame, then a valid one: the victim must not fall back to
			// reading the next frame as version 1.
			st.Send(append(spec.Version(v), spec.Valid()...))
			wantCode(t, spec.Name, st.Answer(spec, answerBound), protocols.CodeUnsupportedVersion)
			if more := st.Answer(spec, answerBound); !errors.Is(more.Err, io.EOF) {
				t.Errorf("%s version %d: after the Error %+v, want the end of the stream", spec.Name, v, more)
			}
			st.Reset()
			cancel()
		}
	}
	if ms, err := a.victim.Messages(t.Context(), "mal", 0); err != nil || len(ms) != 0 {
		t.Errorf("victim holds %d messages from the attacker (%v), want none", len(ms), err)
	}
	a.stillServes(t)
}

// B5, the other way: a peer that answers our message UNSUPPORTED_VERSION
// gets it once, on /kith/dm/1.0.0 only: the message fails, and is never
// sent again under another version or protocol ID (no silent downgrade).
func TestHostileReceiverRefusesVersionNoDowngrade(t *testing.T) {
	w := nothingLost(t)
	v, m := w.start(), w.start()
	befriend(t, v, m, "victim", "mal")
	var mu sync.Mutex
	var seen []protocol.ID
	m.Host().SetStreamHandlerMatch("/kith/dm/", func(id protocol.ID) bool { return strings.HasPrefix(string(id), "/kith/dm/") },
		func(st network.Stream) {
			defer st.Close()
			mu.Lock()
			seen = append(seen, st.Protocol())
			mu.Unlock()
			protocols.NewDMWriter(st).Write(protocols.DMFrame{Error: &protocols.RemoteError{
				Code: protocols.CodeUnsupportedVersion, Message: "only version 7 here"}})
			io.Copy(io.Discard, st)
		})
	m.Host().RemoveStreamHandler(protocols.DMProtocol) // the match handler alone answers
	events, cancel := v.Events().Subscribe()
	defer cancel()
	sent, err := v.SendMessage(t.Context(), "mal", "hello")
	if err != nil && sent.ID == "" {
		t.Fatal(err)
	}
	waitMessage(t, events, func(mi node.MessageInfo) bool { return mi.Text == "hello" && mi.State == "failed" })
	// A later message is sent again on /kith/dm/1.0.0; the failed one is not.
	v.SendMessage(t.Context(), "mal", "second") // fails as the first did
	waitMessage(t, events, func(mi node.MessageInfo) bool { return mi.Text == "second" && mi.State == "failed" })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != protocols.DMProtocol || seen[1] != protocols.DMProtocol {
		t.Errorf("the victim opened %v; want /kith/dm/1.0.0 once per message", seen)
	}
}

// B9: a DM frame captured and replayed on a new stream, again after the
// victim restarts, is acked each time and stored once.
func TestHostileReplayedDM(t *testing.T) {
	w := nothingLost(t)
	home := t.TempDir()
	v := w.start(func(c *node.Config) { c.Home = home })
	m := w.start()
	w.rawSender(m)
	befriend(t, v, m, "victim", "mal")
	atk := hostile.New(m.Host())
	var id [16]byte
	rand.Read(id[:])
	spec := hostile.DM(id, time.Now(), "pay 10 to mal")
	frame := spec.Valid()
	replay := func(v *node.Node) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), answerBound)
		defer cancel()
		st, err := atk.Replay(ctx, v.ID(), protocols.DMProtocol, frame)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		if ans := st.Answer(spec, answerBound); !ans.Frame {
			t.Fatalf("replay: answer %+v, want an Ack", ans)
		}
	}
	count := func(v *node.Node) int {
		ms, err := v.Messages(t.Context(), "mal", 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mi := range ms {
			if mi.Text == "pay 10 to mal" {
				n++
			}
		}
		return n
	}
	for range 3 {
		replay(v)
	}
	if n := count(v); n != 1 {
		t.Fatalf("after 3 replays the victim shows the message %d times, want 1", n)
	}
	v.Close()
	v2 := w.start(func(c *node.Config) { c.Home = home })
	m.Host().Peerstore().AddAddrs(v2.ID(), v2.Host().Addrs(), time.Hour)
	replay(v2)
	if n := count(v2); n != 1 {
		t.Fatalf("after a restart and a replay the victim shows the message %d times, want 1", n)
	}
}
