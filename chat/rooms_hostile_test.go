package chat_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// An outsider that knows a private room's topic but not its secret reads
// nothing of it, and what it posts (sealed with another key, or not sealed)
// is rejected by the members and never shown.
func TestHostileRoomOutsider(t *testing.T) {
	nothingLost(t)
	a, b := newRoomNode(t, chat.RoomConfig{}), newRoomNode(t, chat.RoomConfig{})
	out := newRoomNode(t, chat.RoomConfig{})
	connect(t, a.h, b.h)
	connect(t, out.h, a.h)
	connect(t, out.h, b.h)
	room := a.join(t, "team", []byte("correct horse"))
	b.join(t, "team", []byte("correct horse"))
	topic, err := out.ps.Join(room.Topic) // no validator: it reads whatever comes
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	a.waitPeers(t, "team", b.h.ID(), out.h.ID())
	b.waitPeers(t, "team", a.h.ID(), out.h.ID())
	out.trace.waitTopicPeers(t, waitBound, topic, a.h.ID(), b.h.ID())

	if _, err := a.svc.Send(t.Context(), "team", "the plans"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	got, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got.Data, []byte("the plans")) || bytes.Contains(got.Data, []byte("team")) {
		t.Errorf("the outsider reads the room: %q", got.Data)
	}
	if _, err := protocols.DecodeRoomPayload(got.Data, "team", nil, room.Topic); err == nil {
		t.Error("the payload decodes without the key")
	}

	wrong, _ := protocols.RoomKeyFromBytes(bytes.Repeat([]byte{7}, protocols.RoomKeySize))
	now := time.Now()
	m := protocols.RoomMessage{Room: "team", Seq: 1, SentAt: now, Clock: now.UnixMilli(), Text: "let me in"}
	sealed, _ := protocols.EncodeRoomPayload(m, wrong, room.Topic)
	plain, _ := protocols.EncodeRoomPayload(m, nil, room.Topic)
	for _, p := range [][]byte{sealed, plain} {
		if err := topic.Publish(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		a.waitReject(t, func(r rejected) bool {
			return r.author == out.h.ID() && r.reason == pubsub.RejectValidationFailed
		})
	}
	// a saw the outsider's posts rejected; what it shows next is b's message.
	a.nextMessage(t) // its own "the plans"
	if _, err := b.svc.Send(t.Context(), "team", "ok"); err != nil {
		t.Fatal(err)
	}
	if m := a.nextMessage(t); m.Author != b.h.ID() || m.Text != "ok" {
		t.Fatalf("a shows %+v", m)
	}
}

// roomBurst and roomRate are a member's bucket for each author with
// RoomConfig's defaults: Burst 40 plus chat.RateSlack (2 s) at Rate 20.
const (
	roomBurst = 40 + 20*2
	roomRate  = 20.0
)

// openPayload is the payload of message seq of the open room, sent now.
func openPayload(t testing.TB, room string, seq uint64, text string) []byte {
	t.Helper()
	return openPayloadAt(t, room, seq, text, time.Now())
}

// openPayloadAt is openPayload stating sentAt, and that as its clock.
func openPayloadAt(t testing.TB, room string, seq uint64, text string, sentAt time.Time) []byte {
	t.Helper()
	return openPayloadClock(t, room, seq, text, sentAt, sentAt.UnixMilli())
}

// openPayloadClock is openPayloadAt with the clock given.
func openPayloadClock(t testing.TB, room string, seq uint64, text string, sentAt time.Time, clock int64) []byte {
	t.Helper()
	topic, err := protocols.RoomTopic(room, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := protocols.EncodeRoomPayload(protocols.RoomMessage{Room: room, Seq: seq, SentAt: sentAt, Clock: clock, Text: text}, nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A hostile peer speaking GossipSub itself injects forged messages into
// an open room of A, B and C:
//
//   - (a) a message whose from is A but that the hostile peer signed, with
//     no key attached (pubsub takes A's key from A's ID) and with its own
//     key attached. A room payload names no author (the signer is the
//     author, protocols' Rooms section), so "an author field that is not
//     the signer" is exactly this case: from is the only author field;
//   - (b) a message A really sent (captured as A flood-published it to the
//     hostile peer) with its data altered after signing;
//   - (c) a message claiming to be A's, with no signature.
//
// Every member drops each before any validator runs (A, the impersonated
// author, drops (a) and (b) as claiming to be its own); nothing of them is
// delivered or stored anywhere, and the members that score the hostile
// peer score it below RoomScoreThresholds' gossip threshold.
func TestHostileRoomForgedAuthor(t *testing.T) {
	nothingLost(t)
	bScores, bOpt := newScoreWatch()
	cScores, cOpt := newScoreWatch()
	a := newRoomNode(t, chat.RoomConfig{})
	b := newRoomNode(t, chat.RoomConfig{}, bOpt)
	c := newRoomNode(t, chat.RoomConfig{}, cOpt)
	members := []*roomNode{a, b, c}
	evil, room := ringWithRawPeer(t, members)

	if _, err := a.svc.Send(t.Context(), "lobby", "hello"); err != nil {
		t.Fatal(err)
	}
	genuine := evil.capture(t, func(m *pb.Message) bool { return peer.ID(m.From) == a.h.ID() })
	altered := proto.CloneOf(genuine)
	altered.Data = openPayload(t, "lobby", 1, "hello, and send me your keys")
	forgedBare := signedMessage(t, a.h.ID(), evil.key, room.Topic, openPayload(t, "lobby", 2, "forged"))
	forgedKeyed := signedMessage(t, a.h.ID(), evil.key, room.Topic, openPayload(t, "lobby", 3, "forged with key"))
	var err error
	if forgedKeyed.Key, err = crypto.MarshalPublicKey(evil.key.GetPublic()); err != nil {
		t.Fatal(err)
	}
	unsigned := &pb.Message{From: []byte(a.h.ID()), Data: openPayload(t, "lobby", 4, "unsigned"),
		Seqno: []byte{0, 0, 0, 0, 0, 0, 0, 9}, Topic: &room.Topic}
	for _, n := range members {
		evil.publish(t, n.h.ID(), forgedBare, forgedKeyed, altered, unsigned)
	}

	invalid := []string{pubsub.RejectInvalidSignature, pubsub.RejectInvalidSignature,
		pubsub.RejectInvalidSignature, pubsub.RejectMissingSignature}
	for i, want := range [][]string{
		{pubsub.RejectMissingSignature, pubsub.RejectSelfOrigin, pubsub.RejectSelfOrigin, pubsub.RejectSelfOrigin},
		invalid, invalid} {
		var got []string
		for range 4 {
			r := members[i].waitReject(t, func(r rejected) bool { return r.from == evil.h.ID() })
			got = append(got, r.reason)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("member %d dropped the forgeries for %q, want %q", i, got, want)
		}
	}
	gossip := chat.RoomScoreThresholds().GossipThreshold
	for i, w := range []*scoreWatch{bScores, cScores} {
		s := w.wait(t, evil.h.ID(), "below the gossip threshold", func(s float64) bool { return s < gossip })
		t.Logf("member %d scores the forger %.0f", i+1, s)
	}

	// The room still works, and holds only what A wrote.
	if _, err := a.svc.Send(t.Context(), "lobby", "still here"); err != nil {
		t.Fatal(err)
	}
	for i, n := range members {
		if i > 0 {
			for _, text := range []string{"hello", "still here"} {
				if m := n.nextMessage(t); m.Author != a.h.ID() || m.Text != text {
					t.Fatalf("member %d shows %q from %s, want %q from A", i, m.Text, m.Author, text)
				}
			}
		}
		msgs, err := n.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || msgs[0].Text != "hello" || msgs[1].Text != "still here" {
			t.Errorf("member %d stores %+v, want A's two messages", i, msgs)
		}
	}
}

// waitOutOfMesh waits, on pubsub events, until p is not in n's mesh of
// room.
func (n *roomNode) waitOutOfMesh(t testing.TB, room string, p peer.ID) {
	t.Helper()
	topic, err := n.svc.Topic(room)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(waitBound)
	for {
		changed, mesh := n.trace.state(topic.String())
		if !mesh[p] {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s stays in %s's mesh of %s", p, n.h.ID(), room)
		}
	}
}

// A member floods an open room far over the rate limit: it publishes 500
// valid messages straight on its pubsub topic, as fast as pubsub signs
// them, bypassing Send's own limiter, while an honest member sends 30
// messages with Send. The other two members:
//
//   - store at most 3 × (burst + rate × elapsed) of the flooder's
//     messages: each message a member accepted live took a token from its
//     bucket of that author (started full when the first one arrived,
//     after start; +1 for the bucket's fractional token), and history
//     hands each member what the other honest members accepted (A, B and
//     C each judge the flood with a bucket of their own, and the buckets'
//     refills let different messages through);
//   - store every honest message;
//   - score the flooder below 0, then below RoomScoreThresholds' graylist
//     threshold (every message over the rate that it sent itself counts as
//     invalid, -100 × count²: 6 are enough), and prune it from their mesh.
//
// How B and C score each other is left to
// TestHostileRoomRateRejectSparesForwarders.
func TestHostileRoomFlooder(t *testing.T) {
	nothingLost(t)
	const (
		flood  = 500
		honest = 30
	)
	cfg := chat.RoomConfig{}
	bScores, bOpt := newScoreWatch()
	cScores, cOpt := newScoreWatch()
	a, flooder := newRoomNode(t, cfg), newRoomNode(t, cfg)
	b, c := newRoomNode(t, cfg, bOpt), newRoomNode(t, cfg, cOpt)
	nodes := []*roomNode{a, b, c, flooder}
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			connect(t, nodes[i].h, nodes[j].h)
		}
		nodes[i].join(t, "lobby", nil)
	}
	for i, n := range nodes {
		var others []peer.ID
		for j, m := range nodes {
			if j != i {
				others = append(others, m.h.ID())
			}
		}
		n.waitPeers(t, "lobby", others...)
		if n == b || n == c {
			n.waitMesh(t, "lobby", others...)
		}
	}
	topic, err := flooder.svc.Topic("lobby")
	if err != nil {
		t.Fatal(err)
	}

	// The flood goes past the flooder's service: members that ignored it
	// over the rate may still fetch some of it from each other as history.
	for seq := range uint64(flood) {
		wroteElsewhere(t, "lobby", flooder.h.ID(), seq+1, "spam")
	}
	start := time.Now()
	errs := make(chan error, 1)
	go func() {
		for seq := range uint64(flood) {
			if err := topic.Publish(t.Context(), openPayload(t, "lobby", seq+1, "spam")); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for i := range honest {
		if _, err := a.svc.Send(t.Context(), "lobby", fmt.Sprintf("honest %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	t.Logf("flooder published %d messages in %v", flood, time.Since(start))

	graylist := chat.RoomScoreThresholds().GraylistThreshold
	for i, n := range []*roomNode{b, c} {
		for k := range honest {
			n.expectMessage(t, a.h.ID(), fmt.Sprintf("honest %d", k))
		}
		w := []*scoreWatch{bScores, cScores}[i]
		w.wait(t, flooder.h.ID(), "below 0", func(s float64) bool { return s < 0 })
		s := w.wait(t, flooder.h.ID(), "below the graylist threshold", func(s float64) bool { return s < graylist })
		n.waitOutOfMesh(t, "lobby", flooder.h.ID())
		elapsed := time.Since(start)
		msgs, err := n.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
		if err != nil {
			t.Fatal(err)
		}
		from := map[peer.ID]int{}
		for _, m := range msgs {
			from[m.Author]++
		}
		bound := 3 * (float64(roomBurst) + roomRate*elapsed.Seconds() + 1)
		t.Logf("member %d: stored %d of the flooder's %d messages in %v (bound %.0f), scores it %.0f",
			i+1, from[flooder.h.ID()], flood, elapsed, bound, s)
		if got := from[flooder.h.ID()]; got < roomBurst || float64(got) > bound {
			t.Errorf("member %d stored %d of the flooder's messages, want %d to %.0f", i+1, got, roomBurst, bound)
		}
		if from[a.h.ID()] != honest {
			t.Errorf("member %d stored %d honest messages, want %d", i+1, from[a.h.ID()], honest)
		}
	}
}

// nextEvent returns n's next room event.
func (n *roomNode) nextEvent(t testing.TB) chat.RoomEvent {
	t.Helper()
	select {
	case e := <-n.events:
		return e
	case <-time.After(waitBound):
		t.Fatal("no room event")
		return chat.RoomEvent{}
	}
}

// Replays into an open room of A and B, through a hostile peer that
// captured what A flood-published to it, and that also holds messages A
// signed but never sent to B (the test signs them with A's key: think of
// messages A sent while B was away). As protocols' Rooms section says, a
// member keeps each (room, author, seq) once:
//
//   - a seq above the high-water mark is stored, and the seqs between are
//     reported as a gap;
//   - a seq below it that B never held fills the gap: stored, not a replay;
//   - another message with a seq B holds (a new pubsub ID: other text) is
//     dropped without penalty, and B keeps the first;
//   - the captured message replayed once pubsub has forgotten its ID is
//     dropped too. B's pubsub runs with a 1 s seen-messages TTL, but forgets
//     an ID only when it sweeps its seen cache, once a minute (timecache's
//     backgroundSweepInterval): the test replays every 100 ms until pubsub
//     takes the replay into validation again instead of dropping it as a
//     duplicate, which takes up to a minute.
func TestHostileRoomReplay(t *testing.T) {
	nothingLost(t)
	trace := newMsgTracer()
	a := newRoomNode(t, chat.RoomConfig{})
	b := newRoomNode(t, chat.RoomConfig{}, pubsub.WithSeenMessagesTTL(time.Second), pubsub.WithRawTracer(trace))
	evil := newRawPeer(t)
	connect(t, a.h, b.h)
	connect(t, evil.h, a.h)
	connect(t, evil.h, b.h)
	room := a.join(t, "lobby", nil)
	b.join(t, "lobby", nil)
	evil.subscribe(t, a.h.ID(), room.Topic)
	evil.subscribe(t, b.h.ID(), room.Topic)
	a.waitPeers(t, "lobby", b.h.ID(), evil.h.ID())
	b.waitPeers(t, "lobby", a.h.ID(), evil.h.ID())

	if _, err := a.svc.Send(t.Context(), "lobby", "hello"); err != nil {
		t.Fatal(err)
	}
	b.expectMessage(t, a.h.ID(), "hello")
	captured := evil.capture(t, func(m *pb.Message) bool { return peer.ID(m.From) == a.h.ID() })

	akey := privKey(t, a.h)
	// A's messages 2 to 4, signed here as A's other device would: times
	// in seq order, as kith states them, whatever order they are sent in.
	base := time.Now()
	signed := func(seq uint64, text string) *pb.Message {
		return signedMessage(t, a.h.ID(), akey, room.Topic, openPayloadAt(t, "lobby", seq, text, base.Add(time.Duration(seq)*time.Millisecond)))
	}
	for seq, text := range map[uint64]string{2: "two", 3: "three", 4: "four"} {
		wroteElsewhere(t, "lobby", a.h.ID(), seq, text)
	}
	evil.publish(t, b.h.ID(), signed(3, "three"))
	if e := b.nextEvent(t); e.Gap == nil || *e.Gap != (chat.Gap{Author: a.h.ID(), From: 2, To: 2}) {
		t.Fatalf("after seq 3, B reports %+v, want the gap of seq 2", e)
	}
	if m := b.nextMessage(t); m.Seq != 3 || m.Text != "three" {
		t.Fatalf("B shows %+v, want seq 3", m)
	}
	evil.publish(t, b.h.ID(), signed(2, "two"))
	if m := b.nextMessage(t); m.Seq != 2 || m.Text != "two" {
		t.Fatalf("B shows %+v, want seq 2, filling the gap", m)
	}
	if gaps, err := b.svc.Gaps(t.Context(), "lobby"); err != nil || len(gaps) != 0 {
		t.Fatalf("B's gaps after the fill: %v, %v", gaps, err)
	}
	again := signed(3, "three, rewritten")
	evil.publish(t, b.h.ID(), again)
	if k := trace.next(t, evil.h.ID(), chat.RoomMessageID(again)); k != "validate" {
		t.Fatalf("pubsub on B: %s, want the new ID validated", k)
	}
	if k := trace.next(t, evil.h.ID(), chat.RoomMessageID(again)); k != "reject: "+pubsub.RejectValidationIgnored {
		t.Fatalf("pubsub on B: %s, want seq 3 again ignored", k)
	}

	id := chat.RoomMessageID(captured)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for replays := 1; ; replays++ {
		evil.publish(t, b.h.ID(), captured)
		k := trace.next(t, evil.h.ID(), id)
		if k == "validate" {
			t.Logf("pubsub validated the replay again after %d replays", replays)
			break
		}
		if k != "duplicate" {
			t.Fatalf("pubsub on B: %s, want the replay dropped as a duplicate", k)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("pubsub on B still drops the replay as a duplicate after 2 minutes")
		}
	}
	if k := trace.next(t, evil.h.ID(), id); k != "reject: "+pubsub.RejectValidationIgnored {
		t.Fatalf("pubsub on B: %s, want the replay ignored", k)
	}

	// Nothing was shown twice: B's next message is A's next one.
	evil.publish(t, b.h.ID(), signed(4, "four"))
	if m := b.nextMessage(t); m.Seq != 4 || m.Text != "four" {
		t.Fatalf("B shows %+v, want seq 4", m)
	}
	msgs, err := b.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(msgs, func(x, y chat.RoomMessage) int { return cmp.Compare(x.Seq, y.Seq) })
	texts := make([]string, len(msgs))
	for i, m := range msgs {
		if int(m.Seq) != i+1 {
			t.Fatalf("B stores %+v", msgs)
		}
		texts[i] = m.Text
	}
	if want := []string{"hello", "two", "three", "four"}; !slices.Equal(texts, want) {
		t.Errorf("B stores %q, want %q", texts, want)
	}
}

// ringWithRawPeer connects three members in a ring, joins each to "lobby"
// and has a raw peer, connected to all three, subscribe to its topic; it
// returns once every member lists the other two and the raw peer.
func ringWithRawPeer(t *testing.T, members []*roomNode) (*rawPeer, chat.Room) {
	t.Helper()
	evil := newRawPeer(t)
	for i, n := range members {
		connect(t, n.h, members[(i+1)%3].h)
		connect(t, evil.h, n.h)
	}
	room := members[0].join(t, "lobby", nil)
	for _, n := range members[1:] {
		n.join(t, "lobby", nil)
	}
	for i, n := range members {
		evil.subscribe(t, n.h.ID(), room.Topic)
		n.waitPeers(t, "lobby", members[(i+1)%3].h.ID(), members[(i+2)%3].h.ID(), evil.h.ID())
	}
	return evil, room
}
