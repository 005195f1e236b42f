package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
)

// BenchmarkDMRoundTrip measures one direct message between two real kith
// nodes that are contacts, on an already open loopback TCP connection (as
// in chat's in-memory benchmark, though nodes secure it with Noise and
// chat's bare hosts with TLS): SendMessage until the receiver's ack,
// through the SQLite store with every commit synced (synchronous=FULL). The
// ceilings, measured first in the same run on the same connection, are as
// in chat's BenchmarkDMRoundTrip: ping (a round trip on a stream that stays
// open; dm reports x-ping) and new-stream (a ping-sized echo on a stream of
// its own; x-new-stream).
//
// This is the figure for the goal "DM round trip ≤ 2× ping", and the fsync
// path cannot meet it. A sequential send has three synced commits on its
// critical path: the sender's AddOutgoing (the message must be in the
// outbox before it leaves, or a crash could lose it), the receiver's
// AddIncoming (the ack promises the message is on disk) and the sender's
// MarkDelivered (Send reports delivered once it is recorded). Each is a disk
// flush, which costs several loopback round trips on its own (node/store's
// BenchmarkAddIncoming measures one); when this was written (2 cores, a
// virtual disk) a flush took ~0.3 ms, a ping ~20 µs and dm ~50× ping. Only
// a faster disk or weaker promises would move that, not the protocol.
//
// chat's BenchmarkDMRoundTrip measures the same exchange with in-memory
// stores, the protocol alone. While each Send opened a stream of its own
// (opening, negotiating and closing one costs three to four ping round
// trips) that was ~4× ping, ~1.25× new-stream; since the sender keeps one
// stream per peer open between deliveries it is ~1.3–1.7× ping, so the
// protocol meets the goal and the disk alone keeps this figure from it.
func BenchmarkDMRoundTrip(b *testing.B) {
	from, to := dmNodePair(b)
	var pingNs, streamNs float64
	b.Run("ping", func(b *testing.B) { pingNs = chattest.BenchPing(b, from.Host(), to.Host()) })
	b.Run("new-stream", func(b *testing.B) { streamNs = chattest.BenchNewStream(b, from.Host(), to.Host()) })
	b.Run("dm", func(b *testing.B) {
		lat := sendMessages(b, from, to)
		chattest.ReportRatio(b, pingNs, "x-ping")
		chattest.ReportRatio(b, streamNs, "x-new-stream")
		chattest.ReportLatency(b, lat)
	})
	oneDMConn(b, from, to)
}

// BenchmarkDMThroughput measures sustained direct messages per second
// between two real nodes (SQLite, synced commits), each SendMessage waiting
// for its ack: sequential sends one after another; concurrent has
// chattest.ConcurrentSenders goroutines calling SendMessage at once, so their
// messages share deliveries (one stream, up to 32 frames before reading
// acks) and their commits queue for each store's one write connection.
// p50-ns and p99-ns are the ack latency of one SendMessage.
func BenchmarkDMThroughput(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		from, to := dmNodePair(b)
		chattest.ReportThroughput(b, sendMessages(b, from, to))
	})
	b.Run("concurrent", func(b *testing.B) {
		from, to := dmNodePair(b)
		chattest.ReportThroughput(b, sendMessagesConcurrently(b, from, to, chattest.ConcurrentSenders))
	})
}

// dmNodePair starts two nodes listening on loopback TCP only, makes them
// contacts of each other (by ticket), connects them and sends one message to
// warm the connection up.
func dmNodePair(b *testing.B) (from, to *node.Node) {
	b.Helper()
	tcp := func(cfg *node.Config) { cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"} }
	from, to = nodetest.Start(b, tcp), nodetest.Start(b, tcp)
	befriend(b, from, to, "ana", "ben")
	if err := from.Connect(b.Context(), to.ID()); err != nil {
		b.Fatal(err)
	}
	if _, err := timedSendMessage(b.Context(), from); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	oneDMConn(b, from, to)
	return from, to
}

// oneDMConn fails unless the nodes share exactly one connection, so that
// the ceilings and dm are measured on the same one.
func oneDMConn(b *testing.B, from, to *node.Node) {
	b.Helper()
	if n := len(from.Host().Network().ConnsToPeer(to.ID())); n != 1 {
		b.Fatalf("%d connections between the nodes, want 1", n)
	}
}

// sendMessages sends one message per iteration to "ben", each after the
// previous one was acked, checks that every one arrived and returns their
// latencies.
func sendMessages(b *testing.B, from, to *node.Node) []time.Duration {
	before := receivedCount(b, to)
	var lat []time.Duration
	for b.Loop() {
		d, err := timedSendMessage(b.Context(), from)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	checkReceivedCount(b, to, before+b.N)
	return lat
}

// sendMessagesConcurrently has senders goroutines call SendMessage at once,
// one message per iteration in all, checks that every message arrived and
// returns their latencies.
func sendMessagesConcurrently(b *testing.B, from, to *node.Node, senders int) []time.Duration {
	before := receivedCount(b, to)
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
				d, err := timedSendMessage(b.Context(), from)
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
	checkReceivedCount(b, to, before+b.N)
	return lat
}

// timedSendMessage sends chattest.Text to the contact "ben" and returns how
// long SendMessage took. A message that is not delivered is an error.
func timedSendMessage(ctx context.Context, from *node.Node) (time.Duration, error) {
	start := time.Now()
	m, err := from.SendMessage(ctx, "ben", chattest.Text)
	d := time.Since(start)
	if err == nil && m.State != string(chat.StateDelivered) {
		err = fmt.Errorf("send returned state %q, want %q", m.State, chat.StateDelivered)
	}
	return d, err
}

// receivedCount is how many messages "to" has stored from "ana".
func receivedCount(b *testing.B, to *node.Node) int {
	b.Helper()
	ms, err := to.Messages(b.Context(), "ana", 0)
	if err != nil {
		b.Fatal(err)
	}
	return len(ms)
}

// checkReceivedCount fails unless "to" has stored exactly want messages.
func checkReceivedCount(b *testing.B, to *node.Node, want int) {
	b.Helper()
	if got := receivedCount(b, to); got != want {
		b.Fatalf("receiver stored %d messages, want %d", got, want)
	}
}
