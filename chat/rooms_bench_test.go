package chat_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// benchRoomNodes is the size of the benchmark room.
	benchRoomNodes = 50
	// benchRandomPeers is how many random others each node dials, besides
	// its neighbour on a ring (which keeps the graph connected): about 14
	// connections a node, not a full mesh.
	benchRandomPeers = 7
	// benchPublishers send at once in the throughput benchmark.
	benchPublishers = 5
	// benchBurst is how many messages each publisher sends at once in the
	// burst benchmark (someone pastes a few lines, or a member publishes
	// what it wrote while offline).
	benchBurst = 8
	// benchLate is the latency goal: deliveries later are counted as late
	// and their path is reported.
	benchLate = 150 * time.Millisecond
	// benchWait bounds the wait for one message to reach every member.
	benchWait = 3 * time.Second
)

// BenchmarkRoom50 runs an open room of benchRoomNodes in-process members
// on loopback TCP, each connected to benchRandomPeers random others and a
// ring neighbour, with in-memory stores and kith's NewPubSub, and measures
// once every member has at least D_lo peers in its mesh:
//
//   - latency: each iteration, a random member sends one message and the
//     benchmark waits until all others store it (at most benchWait). It
//     reports the delivery ratio (delivered-%, goal 100), the latency from
//     Send to the receiver's stored event, p50/p99/max over every receiver
//     (goal p99 ≤ 150 ms), how many deliveries were later than 150 ms and
//     how many of those came through gossip (IHAVE, then IWANT), and the
//     resident memory per member (RSS growth from before the room was built,
//     divided by its size);
//   - burst: each iteration, benchPublishers members send benchBurst
//     messages each at once, and the benchmark waits until all are stored
//     everywhere (dropped counts the copies pubsub dropped because a peer's
//     outbound queue was full, queue-full the messages a validation queue
//     refused);
//   - throughput: each iteration, benchPublishers members send one message
//     each at once, without waiting for delivery; msgs/s is messages
//     stored by all others per second, until the last is delivered.
//
// The room's members allow 1000 messages per second per author (RoomConfig)
// so that throughput measures the mesh, not kith's rate limit (20 per
// second per author by default: 100 per second for 5 publishers).
// `just bench-rooms` runs it.
func BenchmarkRoom50(b *testing.B) {
	benchRoom50(b, newBenchRoom(b, chat.RoomConfig{Rate: 1000, Burst: 1000}, true))
}

// BenchmarkRoom50Heartbeat1s is BenchmarkRoom50 with pubsub's default
// GossipSub parameters (a heartbeat every second) instead of
// RoomGossipSubParams: the baseline that shows what kith's 200 ms heartbeat
// costs or saves, measured in the same run.
func BenchmarkRoom50Heartbeat1s(b *testing.B) {
	benchRoom50(b, newBenchRoom(b, chat.RoomConfig{Rate: 1000, Burst: 1000}, true,
		pubsub.WithGossipSubParams(pubsub.DefaultGossipSubParams())))
}

func benchRoom50(b *testing.B, r *benchRoom) {
	b.Run("latency", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			id := r.send(b, rng.IntN(len(r.nodes)))
			r.rec.wait(id, benchWait)
		}
		r.report(b)
		b.ReportMetric(r.rssPerNode/(1<<20), "RSS-MiB/node")
	})
	b.Run("burst", func(b *testing.B) {
		r.rec.reset()
		for b.Loop() {
			var ids []int
			var wg sync.WaitGroup
			for p := range benchPublishers {
				for range benchBurst {
					id := r.rec.next()
					ids = append(ids, id)
				}
				wg.Go(func() {
					for _, id := range ids[p*benchBurst : (p+1)*benchBurst] {
						r.sendID(b, p*(len(r.nodes)/benchPublishers), id)
					}
				})
			}
			wg.Wait()
			for _, id := range ids {
				r.rec.wait(id, benchWait)
			}
		}
		r.report(b)
	})
	b.Run("throughput", func(b *testing.B) {
		r.rec.reset()
		start := time.Now()
		var ids []int
		for b.Loop() {
			var wg sync.WaitGroup
			for p := range benchPublishers {
				id := r.rec.next()
				ids = append(ids, id)
				wg.Go(func() { r.sendID(b, p*(len(r.nodes)/benchPublishers), id) })
			}
			wg.Wait()
		}
		last := start
		for _, id := range ids {
			if t, ok := r.rec.wait(id, benchWait); ok && t.After(last) {
				last = t
			}
		}
		b.ReportMetric(float64(len(ids))/last.Sub(start).Seconds(), "msgs/s")
		r.report(b)
	})
}

// BenchmarkRoom50Cold is BenchmarkRoom50's latency, with members sending
// as soon as they have all joined, before their meshes formed: what a
// member sees right after it joined or reconnected. Run it with a fixed
// iteration count (just bench-rooms runs 100 messages): the first second
// or so is what it measures.
func BenchmarkRoom50Cold(b *testing.B) {
	benchRoom50Cold(b, newBenchRoom(b, chat.RoomConfig{Rate: 1000, Burst: 1000}, false))
}

// BenchmarkRoom50ColdHeartbeat1s is BenchmarkRoom50Cold with pubsub's
// default one-second heartbeat: the stragglers kith's 200 ms heartbeat
// removes show here, in the same run.
func BenchmarkRoom50ColdHeartbeat1s(b *testing.B) {
	benchRoom50Cold(b, newBenchRoom(b, chat.RoomConfig{Rate: 1000, Burst: 1000}, false,
		pubsub.WithGossipSubParams(pubsub.DefaultGossipSubParams())))
}

func benchRoom50Cold(b *testing.B, r *benchRoom) {
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		id := r.send(b, rng.IntN(len(r.nodes)))
		r.rec.wait(id, benchWait)
	}
	r.report(b)
}

// benchRoom is the room: its members and what they stored when.
type benchRoom struct {
	nodes      []*benchNode
	rec        *benchRecorder
	rssPerNode float64
}

type benchNode struct {
	h     host.Host
	svc   *chat.RoomService
	mesh  *nodeTracer
	paths *pathTracer
}

// newBenchRoom builds the room; when warm, it returns once every member
// has D_lo mesh peers, else as soon as all joined.
func newBenchRoom(b *testing.B, cfg chat.RoomConfig, warm bool, opts ...pubsub.Option) *benchRoom {
	runtime.GC()
	rss0 := vmRSS(b)
	r := &benchRoom{rec: newBenchRecorder(benchRoomNodes)}
	for i := range benchRoomNodes {
		r.nodes = append(r.nodes, r.newNode(b, i, cfg, opts...))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i, n := range r.nodes {
		connect(b, n.h, r.nodes[(i+1)%len(r.nodes)].h)
		for _, j := range rng.Perm(len(r.nodes))[:benchRandomPeers+2] {
			if j != i && j != (i+1)%len(r.nodes) && n.h.Network().Connectedness(r.nodes[j].h.ID()) != network.Connected {
				connect(b, n.h, r.nodes[j].h)
			}
		}
	}
	for _, n := range r.nodes {
		n.join(b)
	}
	if warm {
		r.waitMesh(b)
	}
	runtime.GC()
	r.rssPerNode = float64(vmRSS(b)-rss0) / benchRoomNodes
	return r
}

func (r *benchRoom) newNode(b *testing.B, i int, cfg chat.RoomConfig, opts ...pubsub.Option) *benchNode {
	n := &benchNode{h: newHost(b, nil), mesh: newNodeTracer(nil), paths: newPathTracer()}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	ps, err := chat.NewPubSub(ctx, n.h, append(opts, pubsub.WithRawTracer(n.mesh), pubsub.WithRawTracer(n.paths))...)
	if err != nil {
		b.Fatal(err)
	}
	n.svc, err = chat.NewRooms(n.h, ps, newMemRoomStore(), cfg, chat.WithRoomEvents(func(e chat.RoomEvent) {
		if m := e.Message; m != nil && m.Author != n.h.ID() {
			r.rec.stored(m.Text, n.paths.viaGossip(m.ID))
		}
	}), chat.WithRoomLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.svc.Close() })
	return n
}

func (n *benchNode) join(b *testing.B) {
	if _, _, err := n.svc.Join(b.Context(), "bench", nil); err != nil {
		b.Fatal(err)
	}
}

// waitMesh waits until every member has at least D_lo peers in its mesh.
func (r *benchRoom) waitMesh(b *testing.B) {
	dlo := pubsub.DefaultGossipSubParams().Dlo
	topic, err := r.nodes[0].svc.Topic("bench")
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.After(time.Minute)
	for _, n := range r.nodes {
		for {
			changed, mesh := n.mesh.state(topic.String())
			if len(mesh) >= dlo {
				break
			}
			select {
			case <-changed:
			case <-deadline:
				b.Fatalf("%s has %d mesh peers after a minute", n.h.ID(), len(mesh))
			}
		}
	}
}

// send makes member i send the next message and returns its number.
func (r *benchRoom) send(b *testing.B, i int) int {
	id := r.rec.next()
	r.sendID(b, i, id)
	return id
}

func (r *benchRoom) sendID(b *testing.B, i, id int) {
	r.rec.sent(id)
	if _, err := r.nodes[i].svc.Send(b.Context(), "bench", "m"+strconv.Itoa(id)); err != nil {
		b.Error(err)
	}
}

// report reports what rec recorded since its last reset.
func (r *benchRoom) report(b *testing.B) {
	rec := r.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := len(rec.sentAt) * (len(r.nodes) - 1)
	lat := slices.Clone(rec.lat)
	slices.Sort(lat)
	b.ReportMetric(100*float64(len(lat))/float64(max(want, 1)), "delivered-%")
	if len(lat) > 0 {
		q := func(f float64) float64 {
			return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
		}
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	}
	b.ReportMetric(float64(rec.late), "late")
	b.ReportMetric(float64(rec.lateGossip), "late-via-iwant")
	b.ReportMetric(float64(benchDrops.Swap(0)), "dropped")
	b.ReportMetric(float64(benchQueueFull.Swap(0)), "queue-full")
}

// benchRecorder keeps when each message was sent and when each member
// stored it.
type benchRecorder struct {
	mu         sync.Mutex
	members    int
	sentAt     map[int]time.Time
	got        map[int]int       // members that stored it
	done       map[int]time.Time // when the last member stored it
	lat        []time.Duration
	late       int // deliveries later than benchLate
	lateGossip int // of which through IWANT
	changed    chan struct{}
	seq        int
}

func newBenchRecorder(members int) *benchRecorder {
	r := &benchRecorder{members: members}
	r.reset()
	return r
}

func (r *benchRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sentAt, r.got, r.done = map[int]time.Time{}, map[int]int{}, map[int]time.Time{}
	r.lat, r.late, r.lateGossip = nil, 0, 0
	r.changed = make(chan struct{})
}

func (r *benchRecorder) next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

func (r *benchRecorder) sent(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sentAt[id] = time.Now()
}

func (r *benchRecorder) stored(text string, viaGossip bool) {
	now := time.Now()
	id, err := strconv.Atoi(strings.TrimPrefix(text, "m"))
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.sentAt[id]
	if err != nil || !ok {
		return
	}
	d := now.Sub(at)
	r.lat = append(r.lat, d)
	if d > benchLate {
		r.late++
		if viaGossip {
			r.lateGossip++
		}
	}
	r.got[id]++
	if r.got[id] == r.members-1 {
		r.done[id] = now
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// wait waits at most d until every member but the sender stored message
// id, and returns when the last did.
func (r *benchRecorder) wait(id int, d time.Duration) (time.Time, bool) {
	timeout := time.After(d)
	for {
		r.mu.Lock()
		t, ok := r.done[id]
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return t, true
		}
		select {
		case <-changed:
		case <-timeout:
			return time.Time{}, false
		}
	}
}

// pathTracer remembers which messages a member asked for with IWANT (it
// learnt of them through gossip, IHAVE, before any peer forwarded them).
type pathTracer struct {
	*nodeTracer
	mu     sync.Mutex
	iwants map[string]bool // message IDs, as RoomMessage.ID
}

func newPathTracer() *pathTracer {
	return &pathTracer{nodeTracer: newNodeTracer(nil), iwants: map[string]bool{}}
}

func (tr *pathTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	ctl := rpc.GetControl()
	if ctl == nil || len(ctl.GetIwant()) == 0 {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, w := range ctl.GetIwant() {
		for _, id := range w.GetMessageIDs() {
			tr.iwants[fmt.Sprintf("%x", id[:16])] = true
		}
	}
}

// benchDrops and benchQueueFull count, over every member, the message copies
// pubsub dropped for a full outbound queue and the messages a full
// validation queue refused, since the last report.
var benchDrops, benchQueueFull atomic.Int64

func (tr *pathTracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	benchDrops.Add(int64(len(rpc.GetPublish())))
}
func (tr *pathTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull {
		benchQueueFull.Add(1)
	}
}

func (tr *pathTracer) viaGossip(id string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.iwants[id]
}

// vmRSS returns this process's resident set size (VmRSS), in bytes.
func vmRSS(b *testing.B) int64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(s)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
