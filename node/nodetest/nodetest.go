// Package nodetest starts real kith nodes in-process for tests: each in its
// own temporary home, listening on 127.0.0.1 only (port 0), with mDNS and
// port mapping off so no packet leaves the loopback interface. It is for
// tests only and holds no state of its own.
package nodetest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/kithnet/kith/node"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Loopback is the listen set of test nodes: TCP and QUIC on 127.0.0.1.
var Loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Config returns a loopback-only config in a fresh temporary home.
func Config(t testing.TB) node.Config {
	t.Helper()
	off := false
	cfg := node.Config{Home: t.TempDir()}
	cfg.Network.Listen = Loopback
	cfg.Network.MDNS = &off
	cfg.Network.PortMapping = &off
	return cfg
}

// Start starts a node with Config(t) changed by each edit, and closes it when
// the test ends.
func Start(t testing.TB, edits ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := Config(t)
	for _, e := range edits {
		e(&cfg)
	}
	n, err := node.New(cfg, node.WithLogger(Logger(t)))
	if err != nil {
		t.Fatalf("nodetest: start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Relay makes a node a relay / bootstrap node.
func Relay(cfg *node.Config) { cfg.Relay.Enabled = true }

// BootstrapFrom makes a node bootstrap from b.
func BootstrapFrom(b *node.Node) func(*node.Config) {
	return func(cfg *node.Config) { cfg.Network.Bootstrap = P2PAddrs(b) }
}

// P2PAddrs are n's addresses ending in /p2p/ID.
func P2PAddrs(n *node.Node) []string {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Logger logs to the test log at debug level when -v is set, else discards.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
