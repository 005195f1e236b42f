package chat_test

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// benchText is the body of every benchmark message: a typical short line.
const benchText = "a message of some forty characters or so"

// concurrentSenders is how many goroutines call Send at once in
// BenchmarkDMThroughput/concurrent.
const concurrentSenders = 8

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
	b.Run("ping", func(b *testing.B) { pingNs = benchPing(b, from.h, to.h) })
	b.Run("new-stream", func(b *testing.B) { streamNs = benchNewStream(b, from.h, to.h) })
	b.Run("dm", func(b *testing.B) {
		lat := sendEach(b, from, to)
		reportRatio(b, pingNs, "x-ping")
		reportRatio(b, streamNs, "x-new-stream")
		reportLatency(b, lat)
	})
	oneConn(b, from.h, to.h)
}

// BenchmarkDMThroughput measures sustained direct messages per second from
// one sender to one receiver (bare hosts, in-memory stores), each Send
// waiting for its ack: sequential sends one after another; concurrent has
// concurrentSenders goroutines calling Send at once, so their messages share
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
		reportThroughput(b, lat)
		b.ReportMetric(float64(from.opened.Load()-opened), "streams")
	})
	b.Run("concurrent", func(b *testing.B) {
		from, to := dmPair(b)
		opened := from.opened.Load()
		lat := sendConcurrently(b, from, to, concurrentSenders)
		reportThroughput(b, lat)
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

// benchPing takes one result per iteration from one long-running ping and
// returns ns/op. The first round trip, which opens the stream, is not timed.
// p50-ns and p99-ns are the round trips as ping measured them.
func benchPing(b *testing.B, from, to host.Host) float64 {
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
	reportLatency(b, rtts)
	return nsPerOp(b)
}

// echoProtocol is the benchmarks' own protocol for the new-stream ceiling:
// the receiver reads ping.PingSize bytes, writes them back and closes.
const echoProtocol = "/kith/bench-echo/1.0.0"

// benchNewStream echoes ping.PingSize bytes once per iteration, each time on a
// new stream (open, negotiate, one round trip, close, the lifecycle of a DM
// stream), and returns ns/op. The sender knows the receiver speaks the
// protocol, so it negotiates without waiting, as for DMs.
func benchNewStream(b *testing.B, from, to host.Host) float64 {
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
	reportLatency(b, lat)
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

// timedSend sends benchText and returns how long Send took. A message that
// is not delivered is an error.
func timedSend(ctx context.Context, dm *chat.DMService, p peer.ID) (time.Duration, error) {
	start := time.Now()
	m, err := dm.Send(ctx, p, benchText)
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

// reportThroughput reports messages per second and the per-message latency.
func reportThroughput(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	reportLatency(b, lat)
}

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(quantile(lat, 0.50)), "p50-ns")
	b.ReportMetric(float64(quantile(lat, 0.99)), "p99-ns")
}

// quantile is the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// reportRatio reports b's ns/op as a multiple of ceilingNs, unless the
// ceiling was not measured (-bench filtered it out).
func reportRatio(b *testing.B, ceilingNs float64, unit string) {
	if ceilingNs > 0 {
		b.ReportMetric(nsPerOp(b)/ceilingNs, unit)
	}
}

// nsPerOp is the timed duration per iteration, once b.Loop is done.
func nsPerOp(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
