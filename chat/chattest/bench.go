package chattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Text is the body of every DM benchmark message: a typical short line.
const Text = "a message of some forty characters or so"

// ConcurrentSenders is how many goroutines send at once in the concurrent
// throughput benchmarks.
const ConcurrentSenders = 8

// BenchPing takes one result per iteration from one long-running ping and
// returns ns/op. The first round trip, which opens the stream, is not timed.
// p50-ns and p99-ns are the round trips as ping measured them.
func BenchPing(b *testing.B, from, to host.Host) float64 {
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
	ReportLatency(b, rtts)
	return NsPerOp(b)
}

// EchoProtocol is the benchmarks' own protocol for the new-stream ceiling:
// the receiver reads ping.PingSize bytes, writes them back and closes.
const EchoProtocol = "/kith/bench-echo/1.0.0"

// BenchNewStream echoes ping.PingSize bytes once per iteration, each time on a
// new stream (open, negotiate, one round trip, close, the lifecycle of a DM
// stream), and returns ns/op. The sender knows the receiver speaks the
// protocol, so it negotiates without waiting, as for DMs.
func BenchNewStream(b *testing.B, from, to host.Host) float64 {
	to.SetStreamHandler(EchoProtocol, echoOnce)
	defer to.RemoveStreamHandler(EchoProtocol)
	if err := from.Peerstore().AddProtocols(to.ID(), EchoProtocol); err != nil {
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
	ReportLatency(b, lat)
	return NsPerOp(b)
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
	st, err := from.NewStream(ctx, to, EchoProtocol)
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

// ReportThroughput reports messages per second and the per-message latency.
func ReportThroughput(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	ReportLatency(b, lat)
}

// ReportLatency reports the median and 99th percentile of lat.
func ReportLatency(b *testing.B, lat []time.Duration) {
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

// ReportRatio reports b's ns/op as a multiple of ceilingNs, unless the
// ceiling was not measured (-bench filtered it out).
func ReportRatio(b *testing.B, ceilingNs float64, unit string) {
	if ceilingNs > 0 {
		b.ReportMetric(NsPerOp(b)/ceilingNs, unit)
	}
}

// NsPerOp is the timed duration per iteration, once b.Loop is done.
func NsPerOp(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
