package chat_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// rawPeer is a hostile host that speaks GossipSub itself, without a pubsub
// router: it writes the RPC frames it chooses (varint-delimited pb.RPC) on a
// stream of its own to each victim, and keeps the messages victims send it
// on theirs (what they flood-publish or forward to it), to replay them.
type rawPeer struct {
	h   host.Host
	key crypto.PrivKey
	got chan *pb.Message // messages victims sent us

	mu  sync.Mutex
	out map[peer.ID]network.Stream
}

// rawProtocol is the GossipSub version rawPeer speaks: v1.1, which every
// GossipSub router still accepts.
const rawProtocol = pubsub.GossipSubID_v11

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{h: newHost(t, key), key: key, got: make(chan *pb.Message, 1<<12),
		out: map[peer.ID]network.Stream{}}
	// A victim opens its own stream to us when we connect; we read it, so
	// that the victim keeps us as a pubsub peer (and scores us).
	r.h.SetStreamHandler(rawProtocol, r.read)
	return r
}

// read keeps the messages of every RPC a victim sends, until the stream
// ends.
func (r *rawPeer) read(s network.Stream) {
	defer s.Reset()
	br := bufio.NewReader(s)
	for {
		n, err := binary.ReadUvarint(br)
		if err != nil || n > 1<<20 {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		var rpc pb.RPC
		if proto.Unmarshal(buf, &rpc) != nil {
			return
		}
		for _, m := range rpc.GetPublish() {
			select {
			case r.got <- m:
			default:
			}
		}
	}
}

// send writes rpc to victim on our stream to it (opened on first use).
func (r *rawPeer) send(t testing.TB, victim peer.ID, rpc *pb.RPC) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.out[victim]
	if !ok {
		var err error
		if s, err = r.h.NewStream(t.Context(), victim, rawProtocol); err != nil {
			t.Fatal(err)
		}
		r.out[victim] = s
	}
	b, err := proto.Marshal(rpc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// subscribe tells victim that we subscribe to topic.
func (r *rawPeer) subscribe(t testing.TB, victim peer.ID, topic string) {
	t.Helper()
	r.send(t, victim, &pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Topicid: &topic, Subscribe: proto.Bool(true)}}})
}

// publish sends victim the messages ms, as one RPC.
func (r *rawPeer) publish(t testing.TB, victim peer.ID, ms ...*pb.Message) {
	t.Helper()
	r.send(t, victim, &pb.RPC{Publish: ms})
}

// capture returns the next message a victim sent us that f accepts.
func (r *rawPeer) capture(t testing.TB, f func(*pb.Message) bool) *pb.Message {
	t.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case m := <-r.got:
			if f(m) {
				return m
			}
		case <-timeout:
			t.Fatal("the raw peer captured no such message")
		}
	}
}

var rawSeqno atomic.Uint64

// signedMessage returns a pubsub message on topic carrying data, from
// from, signed with key exactly as pubsub signs (SignPrefix and the
// message's encoding without signature and key). It attaches no key:
// pubsub takes an Ed25519 author's key from its ID.
func signedMessage(t testing.TB, from peer.ID, key crypto.PrivKey, topic string, data []byte) *pb.Message {
	t.Helper()
	seqno := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())+rawSeqno.Add(1))
	m := &pb.Message{From: []byte(from), Data: data, Seqno: seqno, Topic: &topic}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), b...)); err != nil {
		t.Fatal(err)
	}
	return m
}

// privKey returns the private key of host h.
func privKey(t testing.TB, h host.Host) crypto.PrivKey {
	t.Helper()
	k := h.Peerstore().PrivKey(h.ID())
	if k == nil {
		t.Fatalf("no private key for %s", h.ID())
	}
	return k
}

// scoreWatch keeps the latest peer scores a pubsub router reports.
type scoreWatch struct {
	latest chan map[peer.ID]float64 // holds one snapshot, the latest
}

// scoreInterval is how often a watched router reports its scores.
const scoreInterval = 50 * time.Millisecond

// newScoreWatch returns a watch and the pubsub option that feeds it.
func newScoreWatch() (*scoreWatch, pubsub.Option) {
	w := &scoreWatch{latest: make(chan map[peer.ID]float64, 1)}
	return w, pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(func(m map[peer.ID]float64) {
		m = maps.Clone(m)
		for {
			select {
			case w.latest <- m:
				return
			default:
				select { // drop the older snapshot
				case <-w.latest:
				default:
				}
			}
		}
	}), scoreInterval)
}

// wait returns the score of p in the first snapshot where ok(score) holds,
// and fails the test if none does within waitBound.
func (w *scoreWatch) wait(t testing.TB, p peer.ID, what string, ok func(float64) bool) float64 {
	t.Helper()
	timeout := time.After(waitBound)
	last, known := 0.0, false
	for {
		select {
		case m := <-w.latest:
			if s, in := m[p]; in {
				last, known = s, true
				if ok(s) {
					return s
				}
			}
		case <-timeout:
			t.Fatalf("score of %s not %s within %v (last %v, known %v)", p, what, waitBound, last, known)
		}
	}
}

// msgTracer reports what pubsub does with each message it receives: kind
// is "validate" (it is new and goes to the validators), "duplicate" (seen
// already, dropped), "deliver" or "reject: REASON".
type msgTracer struct {
	*nodeTracer
	events chan msgEvent
}

type msgEvent struct {
	kind     string
	from, id string
}

func newMsgTracer() *msgTracer {
	return &msgTracer{nodeTracer: newNodeTracer(nil), events: make(chan msgEvent, 1<<14)}
}

func (tr *msgTracer) emit(kind string, m *pubsub.Message) {
	select {
	case tr.events <- msgEvent{kind: kind, from: string(m.ReceivedFrom), id: chat.RoomMessageID(m.Message)}:
	default:
	}
}
func (tr *msgTracer) ValidateMessage(m *pubsub.Message)  { tr.emit("validate", m) }
func (tr *msgTracer) DuplicateMessage(m *pubsub.Message) { tr.emit("duplicate", m) }
func (tr *msgTracer) DeliverMessage(m *pubsub.Message)   { tr.emit("deliver", m) }
func (tr *msgTracer) RejectMessage(m *pubsub.Message, reason string) {
	tr.emit("reject: "+reason, m)
}

// next returns the next event about message id from peer from.
func (tr *msgTracer) next(t testing.TB, from peer.ID, id string) string {
	t.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case e := <-tr.events:
			if e.from == string(from) && e.id == id {
				return e.kind
			}
		case <-timeout:
			t.Fatalf("pubsub traced nothing about message %x from %s", id, from)
		}
	}
}
