package chat_test

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// RELIABILITY B14: GossipSub control-message spam from a raw attacker (the
// pattern of go-libp2p-pubsub's gossipsub_spam_test.go), against kith's
// scoring (RoomScoreParams, RoomTopicScoreParams, RoomScoreThresholds) and
// 200 ms heartbeat. A victim V shares a room with an honest member H, who
// sends spamHonest messages at 20 per second while the attacker, connected
// to V only, floods V. Each case checks that V stores at least 99% of H's
// messages meanwhile and, where the attack is one pubsub penalises, that V
// scores the attacker below the graylist threshold within maxBeats
// heartbeats (the number measured is logged).
//
//   - IHAVE flood: IHAVEs of made-up message IDs, as fast as the stream
//     takes them. V asks for them (IWANT) at most 10 IHAVEs a heartbeat and
//     tracks one promise per IWANT; each unkept promise, 3 s later, is a
//     behaviour penalty (weight -10 over 6: 22 make -2560).
//   - GRAFT during back-off: the attacker PRUNEs V (V backs off from it for a
//     minute), then GRAFTs again and again. Each GRAFT in the back-off costs
//     it 2 penalties (1, plus 1 within the 10 s flood threshold).
//   - invalid messages: messages claiming to be H's, signed with the
//     attacker's key. Each counts as an invalid delivery (-100 × count²: 6
//     make -3600).
//   - IWANT flood: IWANTs for the messages of H that V forwarded it,
//     repeated as fast as the stream takes them. pubsub does not penalise
//     IWANTs, it bounds them: V answers each message ID at most
//     GossipRetransmission (3) times per peer; the attacker receives each
//     message at most 1 + 3 times however often it asks.
func TestRoomGossipSpam(t *testing.T) {
	nothingLost(t)
	for _, tc := range []struct {
		name     string
		attack   func(a *spamAttack) *pb.RPC
		prune    bool // PRUNE first, so that V backs off from the attacker
		maxBeats int  // 0: pubsub does not penalise this attack
	}{
		{"ihave-flood", (*spamAttack).ihave, false, 40},
		{"graft-during-backoff", (*spamAttack).graft, true, 10},
		{"invalid-messages", (*spamAttack).invalid, false, 10},
		{"iwant-flood", (*spamAttack).iwant, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) { runSpam(t, tc.attack, tc.prune, tc.maxBeats) })
	}
}

const spamHonest = 100 // H's messages per case, sent at 20 per second

// spamAttack is one attacker's state: what it says to V next.
type spamAttack struct {
	t      testing.TB
	evil   *rawPeer
	topic  string
	honest peer.ID
	mu     sync.Mutex
	seen   map[string]int // message ID -> copies V sent us
	ids    []string       // the IDs in seen, first seen first
}

func (a *spamAttack) ihave() *pb.RPC {
	ids := make([]string, 100)
	for i := range ids {
		b := make([]byte, 32)
		rand.Read(b)
		ids[i] = string(b)
	}
	return &pb.RPC{Control: &pb.ControlMessage{Ihave: []*pb.ControlIHave{{TopicID: &a.topic, MessageIDs: ids}}}}
}

func (a *spamAttack) graft() *pb.RPC {
	return &pb.RPC{Control: &pb.ControlMessage{Graft: []*pb.ControlGraft{{TopicID: &a.topic}}}}
}

func (a *spamAttack) invalid() *pb.RPC {
	m := signedMessage(a.t, a.honest, a.evil.key, a.topic, openPayload(a.t, "lobby", 1, "forged"))
	return &pb.RPC{Publish: []*pb.Message{m}}
}

func (a *spamAttack) iwant() *pb.RPC {
	a.mu.Lock()
	ids := append([]string(nil), a.ids...)
	a.mu.Unlock()
	if len(ids) == 0 {
		return a.graftless()
	}
	return &pb.RPC{Control: &pb.ControlMessage{Iwant: []*pb.ControlIWant{{MessageIDs: ids}}}}
}

// graftless is an IWANT for an unknown ID: V ignores it.
func (a *spamAttack) graftless() *pb.RPC {
	return &pb.RPC{Control: &pb.ControlMessage{Iwant: []*pb.ControlIWant{{MessageIDs: []string{"unknown"}}}}}
}

// count drains what V sends the attacker, counting copies per message ID.
func (a *spamAttack) count(stop <-chan struct{}) {
	for {
		select {
		case m := <-a.evil.got:
			id := chat.RoomMessageID(m)
			a.mu.Lock()
			if a.seen[id] == 0 {
				a.ids = append(a.ids, id)
			}
			a.seen[id]++
			a.mu.Unlock()
		case <-stop:
			return
		}
	}
}

// trySend is rawPeer.send for a goroutine: it returns the error.
func (r *rawPeer) trySend(victim peer.ID, rpc *pb.RPC) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.out[victim]
	if !ok {
		return fmt.Errorf("no stream to %s", victim)
	}
	b, err := proto.Marshal(rpc)
	if err != nil {
		return err
	}
	_, err = s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

func runSpam(t *testing.T, attack func(*spamAttack) *pb.RPC, prune bool, maxBeats int) {
	vScores, vOpt := newScoreWatch()
	v := newRoomNode(t, chat.RoomConfig{}, vOpt)
	h := newRoomNode(t, chat.RoomConfig{})
	evil := newRawPeer(t)
	connect(t, h.h, v.h)
	connect(t, evil.h, v.h)
	room := v.join(t, "lobby", nil)
	h.join(t, "lobby", nil)
	evil.subscribe(t, v.h.ID(), room.Topic)
	v.waitPeers(t, "lobby", h.h.ID(), evil.h.ID())
	h.waitMesh(t, "lobby", v.h.ID())
	a := &spamAttack{t: t, evil: evil, topic: room.Topic, honest: h.h.ID(), seen: map[string]int{}}
	stopCount := make(chan struct{})
	counted := make(chan struct{})
	go func() { defer close(counted); a.count(stopCount) }()

	start := time.Now()
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() { // the attacker: as fast as V's stream takes it
		n := 0
		defer func() { sent <- n }()
		if prune {
			a.evil.trySend(v.h.ID(), &pb.RPC{Control: &pb.ControlMessage{Prune: []*pb.ControlPrune{{TopicID: &a.topic}}}})
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := a.evil.trySend(v.h.ID(), attack(a)); err != nil {
				return
			}
			n++
		}
	}()

	var graylisted time.Duration
	grayDone := make(chan struct{})
	graylist := chat.RoomScoreThresholds().GraylistThreshold
	go func() {
		defer close(grayDone)
		if maxBeats > 0 {
			vScores.wait(t, evil.h.ID(), "below the graylist threshold", func(s float64) bool { return s < graylist })
			graylisted = time.Since(start)
		}
	}()

	tick := time.NewTicker(50 * time.Millisecond) // 20 messages a second: the room's rate
	for i := range spamHonest {
		<-tick.C
		if _, err := h.svc.Send(t.Context(), "lobby", fmt.Sprintf("honest %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	<-grayDone
	got := waitStored(t, v, h.h.ID(), spamHonest)
	close(stop)
	rpcs := <-sent
	close(stopCount)
	<-counted

	ratio := float64(got) / spamHonest
	t.Logf("attacker sent %d RPCs in %v; V stored %d/%d honest messages (%.1f%%)",
		rpcs, time.Since(start).Round(time.Millisecond), got, spamHonest, 100*ratio)
	if ratio < 0.99 {
		t.Errorf("honest delivery %.1f%% under attack, want >= 99%%", 100*ratio)
	}
	if maxBeats > 0 {
		beats := int(math.Ceil(float64(graylisted) / float64(chat.RoomGossipSubParams().HeartbeatInterval)))
		t.Logf("graylisted after %v = %d heartbeats", graylisted.Round(time.Millisecond), beats)
		if beats > maxBeats {
			t.Errorf("attacker graylisted after %d heartbeats, want <= %d", beats, maxBeats)
		}
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	most := 0
	for _, c := range a.seen {
		most = max(most, c)
	}
	t.Logf("IWANT flood: %d message IDs, each received at most %d times", len(a.seen), most)
	if limit := 1 + chat.RoomGossipSubParams().GossipRetransmission; most > limit {
		t.Errorf("V sent one message %d times to an IWANT flooder, want <= %d", most, limit)
	}
	if len(a.seen) == 0 {
		t.Error("the IWANT flooder never got a message to ask for again: the case tested nothing")
	}
}

// waitStored waits until v stores want messages of author, or until
// 10 s pass without a new one; it returns how many v stores.
func waitStored(t *testing.T, v *roomNode, author peer.ID, want int) int {
	t.Helper()
	last, got := time.Now(), 0
	for time.Since(last) < 10*time.Second {
		msgs, err := v.svc.Messages(t.Context(), "lobby", chat.RoomFilter{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range msgs {
			if m.Author == author {
				n++
			}
		}
		if n > got {
			got, last = n, time.Now()
		}
		if got >= want {
			return got
		}
		select {
		case <-v.events:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return got
}
