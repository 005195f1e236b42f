package chat_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/chat/chattest"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BenchmarkDMRoundTrip measures one direct message, Send until the receiver's
// ack, on an already open loopback connection between two bare hosts with
// in-memory stores: the cost of the protocol alone, no disk. Two ceilings
// are measured first in the same run, on the same connection:
//
//   - ping: a libp2p ping round trip on a stream that stays open, the
//     fastest exchange the connection allows. dm reports its time as a
//     multiple of it (x-ping).
//   - new-stream: a ping-sized echo on a stream of its own (open, negotiate
//     the protocol, one round trip, close), what any protocol that opens a
//     stream per message pays, as the DM service did before it kept a
//     stream per peer open between deliveries (x-new-stream).
//
// Each reports the median and 99th percentile of its round trips. What the
// ratios mean for the goal "DM round trip ≤ 2× ping" is discussed at node's
// BenchmarkDMRoundTrip, which measures the same through real nodes and disk.
func BenchmarkDMRoundTrip(b *testing.B) {
	from, to := dmPair(b)
	var pingNs, streamNs float64
	b.Run("ping", func(b *testing.B) { pingNs = chattest.BenchPing(b, from.h, to.h) })
	b.Run("new-stream", func(b *testing.B) { streamNs = chattest.BenchNewStream(b, from.h, to.h) })
	b.Run("dm", func(b *testing.B) {
		lat := sendEach(b, from, to)
		chattest.ReportRatio(b, pingNs, "x-ping")
		chattest.ReportRatio(b, streamNs, "x-new-stream")
		chattest.ReportLatency(b, lat)
	})
	oneConn(b, from.h, to.h)
}

// BenchmarkDMThroughput measures sustained direct messages per second from
// one sender to one receiver (bare hosts, in-memory stores), each Send
// waiting for its ack: sequential sends one after another; concurrent has
// chattest.ConcurrentSenders goroutines calling Send at once, so their messages share
// the service's per-peer delivery (the whole outbox on one stream, up to 32
// frames before reading acks). p50-ns and p99-ns are the ack latency of one
// Send as its caller sees it; streams is how many streams the sender opened
// during the run (0: every message went on the stream kept since the
// warm-up).
func BenchmarkDMThroughput(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		from, to := dmPair(b)
		opened := from.opened.Load()
		lat := sendEach(b, from, to)
		chattest.ReportThroughput(b, lat)
		b.ReportMetric(float64(from.opened.Load()-opened), "streams")
	})
	b.Run("concurrent", func(b *testing.B) {
		from, to := dmPair(b)
		opened := from.opened.Load()
		lat := sendConcurrently(b, from, to, chattest.ConcurrentSenders)
		chattest.ReportThroughput(b, lat)
		b.ReportMetric(float64(from.opened.Load()-opened), "streams")
	})
}

// benchPeer is a host with a DM service on an in-memory store, and a count
// of the streams the service opened.
type benchPeer struct {
	*peerDM
	opened *atomic.Int64
}

// dmPair starts two hosts on loopback with DM services and in-memory
// stores, connects them and sends one message to warm the connection up
// (identify done, the DM protocol known to the sender).
func dmPair(b *testing.B) (from, to benchPeer) {
	b.Helper()
	from, to = benchDM(b), benchDM(b)
	know(from.h, to.h)
	if err := from.h.Connect(b.Context(), peer.AddrInfo{ID: to.h.ID(), Addrs: to.h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	if _, err := timedSend(b.Context(), from.dm, to.h.ID()); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	oneConn(b, from.h, to.h)
	return from, to
}

// benchDM is startDM without the change listener (a benchmark sends more
// messages than its event buffer holds), counting the streams it opens.
func benchDM(b *testing.B) benchPeer {
	h := &countingHost{Host: newHost(b, nil)}
	p := &peerDM{h: h.Host, store: &memStore{}}
	dm, err := chat.NewDM(h, p.store, chat.DMConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dm.Close() })
	p.dm = dm
	return benchPeer{p, &h.opened}
}

// countingHost counts the streams opened through it.
type countingHost struct {
	host.Host
	opened atomic.Int64
}

func (h *countingHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	h.opened.Add(1)
	return h.Host.NewStream(ctx, p, pids...)
}

// oneConn fails unless a and c share exactly one connection, so that ping
// and dm are measured on the same one.
func oneConn(b *testing.B, a, c host.Host) {
	b.Helper()
	if n := len(a.Network().ConnsToPeer(c.ID())); n != 1 {
		b.Fatalf("%d connections between the hosts, want 1", n)
	}
}

// sendEach sends one message per iteration, each after the previous one
// was acked, checks that every one arrived and returns their latencies.
func sendEach(b *testing.B, from, to benchPeer) []time.Duration {
	before := len(to.store.received())
	var lat []time.Duration
	for b.Loop() {
		d, err := timedSend(b.Context(), from.dm, to.h.ID())
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	checkReceived(b, to, before+b.N)
	return lat
}

// sendConcurrently has senders goroutines call Send at once, one message
// per iteration in all, checks that every message arrived and returns their
// latencies.
func sendConcurrently(b *testing.B, from, to benchPeer, senders int) []time.Duration {
	before := len(to.store.received())
	var (
		mu     sync.Mutex
		lat    []time.Duration
		failed []error
		wg     sync.WaitGroup
	)
	work := make(chan struct{})
	for range senders {
		wg.Go(func() {
			for range work {
				d, err := timedSend(b.Context(), from.dm, to.h.ID())
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		})
	}
	for b.Loop() {
		work <- struct{}{} // blocks while all senders are busy
	}
	// b.Loop has stopped the timer with up to senders messages in flight:
	// time them too, so that ns/op and msgs/s cover every message.
	b.StartTimer()
	close(work)
	wg.Wait()
	b.StopTimer()
	if len(failed) > 0 {
		b.Fatalf("%d of %d sends failed, first: %v", len(failed), b.N, failed[0])
	}
	checkReceived(b, to, before+b.N)
	return lat
}

// timedSend sends chattest.Text and returns how long Send took. A message that
// is not delivered is an error.
func timedSend(ctx context.Context, dm *chat.DMService, p peer.ID) (time.Duration, error) {
	start := time.Now()
	m, err := dm.Send(ctx, p, chattest.Text)
	d := time.Since(start)
	if err == nil && m.State != chat.StateDelivered {
		err = fmt.Errorf("send returned state %q, want %q", m.State, chat.StateDelivered)
	}
	return d, err
}

// checkReceived fails unless to has stored exactly want messages.
func checkReceived(b *testing.B, to benchPeer, want int) {
	b.Helper()
	if got := len(to.store.received()); got != want {
		b.Fatalf("receiver stored %d messages, want %d", got, want)
	}
}
