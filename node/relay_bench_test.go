package node_test

import (
	"io"
	"testing"

	"github.com/kithnet/kith/node"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// sinkProtocol is a benchmark-only protocol that reads and discards.
const sinkProtocol protocol.ID = "/kith-bench/sink/1.0.0"

// benchChunk is what each iteration sends: large enough to amortise stream
// setup, small enough for many iterations.
const benchChunk = 16 << 20

// BenchmarkRelayedThroughput copies 16 MiB per iteration from one host to
// another over a direct loopback TCP connection (the ceiling) and through a
// kith relay on the same machine reached over TCP or QUIC, with 256 KiB
// writes. The relayed runs report their throughput as a fraction of
// direct's (x-direct). A relayed connection is encrypted twice (the circuit
// carries its own secure channel inside the legs to the relay), and
// everything shares the machine's 2 cores.
func BenchmarkRelayedThroughput(b *testing.B) {
	var directNs float64
	b.Run("direct", func(b *testing.B) {
		src, dst := bareHost(b), bareHost(b)
		directNs = benchCopy(b, src, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()}, dst)
	})
	// The relay listens on one transport, so the legs to it use that one.
	for _, tc := range []struct{ name, listen string }{
		{"relayed-tcp", "/ip4/127.0.0.1/tcp/0"},
		{"relayed-quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src, dst := bareHost(b), bareHost(b)
			r := startRelay(b, func(cfg *node.Config) {
				cfg.Relay.Allow = []string{src.ID().String(), dst.ID().String()}
				cfg.Network.Listen = []string{tc.listen}
			})
			if _, err := circuitclient.Reserve(b.Context(), dst, relayInfo(r)); err != nil {
				b.Fatal(err)
			}
			ns := benchCopy(b, src, circuitTo(r, dst.ID()), dst)
			if directNs > 0 {
				b.ReportMetric(directNs/ns, "x-direct")
			}
		})
	}
}

// benchCopy times sending benchChunk bytes on a new stream per iteration and
// returns ns/op.
func benchCopy(b *testing.B, src host.Host, to peer.AddrInfo, dst host.Host) float64 {
	done := make(chan int64, 1)
	dst.SetStreamHandler(sinkProtocol, func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		s.Close()
		done <- n
	})
	ctx := network.WithAllowLimitedConn(b.Context(), "bench")
	if err := src.Connect(ctx, to); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	b.SetBytes(benchChunk)
	for b.Loop() {
		s, err := src.NewStream(ctx, dst.ID(), sinkProtocol)
		if err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < benchChunk; sent += len(buf) {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		s.CloseWrite()
		if n := <-done; n != benchChunk {
			b.Fatalf("received %d bytes, want %d", n, benchChunk)
		}
		s.Close()
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
