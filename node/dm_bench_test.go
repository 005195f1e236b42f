package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// dmBenchText is the body of every benchmark message: a typical short line.
const dmBenchText = "a message of some forty characters or so"

// dmConcurrentSenders is how many goroutines call SendMessage at once in
// BenchmarkDMThroughput/concurrent.
const dmConcurrentSenders = 8

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
	b.Run("ping", func(b *testing.B) { pingNs = benchDMPing(b, from.Host(), to.Host()) })
	b.Run("new-stream", func(b *testing.B) { streamNs = benchDMNewStream(b, from.Host(), to.Host()) })
	b.Run("dm", func(b *testing.B) {
		lat := sendMessages(b, from, to)
		reportDMRatio(b, pingNs, "x-ping")
		reportDMRatio(b, streamNs, "x-new-stream")
		reportDMLatency(b, lat)
	})
	oneDMConn(b, from, to)
}

// BenchmarkDMThroughput measures sustained direct messages per second
// between two real nodes (SQLite, synced commits), each SendMessage waiting
// for its ack: sequential sends one after another; concurrent has
// dmConcurrentSenders goroutines calling SendMessage at once, so their
// messages share deliveries (one stream, up to 32 frames before reading
// acks) and their commits queue for each store's one write connection.
// p50-ns and p99-ns are the ack latency of one SendMessage.
func BenchmarkDMThroughput(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		from, to := dmNodePair(b)
		reportDMThroughput(b, sendMessages(b, from, to))
	})
	b.Run("concurrent", func(b *testing.B) {
		from, to := dmNodePair(b)
		reportDMThroughput(b, sendMessagesConcurrently(b, from, to, dmConcurrentSenders))
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

// benchDMPing takes one result per iteration from one long-running ping and
// returns ns/op. The first round trip, which opens the stream, is not timed.
// p50-ns and p99-ns are the round trips as ping measured them.
func benchDMPing(b *testing.B, from, to host.Host) float64 {
	ctx, cancel := context.WithCancel(b.Context())
	results := ping.Ping(ctx, from, to.ID())
	defer func() {
		cancel()
		for range results { // the pinger closes results once it has stopped
		}
	}()
	next := func() time.Duration {
		r, ok := <-results
		if !ok || r.Error != nil {
			b.Fatalf("ping: %v (channel open: %v)", r.Error, ok)
		}
		return r.RTT
	}
	next()
	var rtts []time.Duration
	for b.Loop() {
		rtts = append(rtts, next())
	}
	reportDMLatency(b, rtts)
	return nsPerOp(b)
}

// echoProtocol is the benchmarks' own protocol for the new-stream ceiling:
// the receiver reads ping.PingSize bytes, writes them back and closes.
const echoProtocol = "/kith/bench-echo/1.0.0"

// benchDMNewStream echoes ping.PingSize bytes once per iteration, each time on a
// new stream (open, negotiate, one round trip, close, the lifecycle of a DM
// stream), and returns ns/op. The sender knows the receiver speaks the
// protocol, so it negotiates without waiting, as for DMs.
func benchDMNewStream(b *testing.B, from, to host.Host) float64 {
	to.SetStreamHandler(echoProtocol, echoOnce)
	defer to.RemoveStreamHandler(echoProtocol)
	if err := from.Peerstore().AddProtocols(to.ID(), echoProtocol); err != nil {
		b.Fatal(err)
	}
	buf, rbuf := make([]byte, ping.PingSize), make([]byte, ping.PingSize)
	rand.Read(buf)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := echoOnNewStream(b.Context(), from, to.ID(), buf, rbuf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportDMLatency(b, lat)
	return nsPerOp(b)
}

// echoOnce serves one echo.
func echoOnce(st network.Stream) {
	st.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(st, buf); err != nil {
		st.Reset()
		return
	}
	if _, err := st.Write(buf); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// echoOnNewStream opens an echo stream, sends buf, reads the echo into rbuf
// and closes the stream.
func echoOnNewStream(ctx context.Context, from host.Host, to peer.ID, buf, rbuf []byte) error {
	st, err := from.NewStream(ctx, to, echoProtocol)
	if err != nil {
		return err
	}
	if _, err := st.Write(buf); err != nil {
		st.Reset()
		return err
	}
	if _, err := io.ReadFull(st, rbuf); err != nil {
		st.Reset()
		return err
	}
	if !bytes.Equal(buf, rbuf) {
		st.Reset()
		return errors.New("echo: wrong bytes")
	}
	return st.Close()
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

// timedSendMessage sends dmBenchText to the contact "ben" and returns how
// long SendMessage took. A message that is not delivered is an error.
func timedSendMessage(ctx context.Context, from *node.Node) (time.Duration, error) {
	start := time.Now()
	m, err := from.SendMessage(ctx, "ben", dmBenchText)
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

// reportDMThroughput reports messages per second and their latency.
func reportDMThroughput(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	reportDMLatency(b, lat)
}

// reportDMLatency reports the median and 99th percentile of lat.
func reportDMLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(nearestRank(lat, 0.50)), "p50-ns")
	b.ReportMetric(float64(nearestRank(lat, 0.99)), "p99-ns")
}

// nearestRank is the nearest-rank q-quantile of sorted.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// reportDMRatio reports b's ns/op as a multiple of ceilingNs, unless the
// ceiling was not measured (-bench filtered it out).
func reportDMRatio(b *testing.B, ceilingNs float64, unit string) {
	if ceilingNs > 0 {
		b.ReportMetric(nsPerOp(b)/ceilingNs, unit)
	}
}
