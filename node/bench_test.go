package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// connectAttempts bounds the dials of one iteration: rapid connect/disconnect
// loops between the same two hosts sometimes fail transiently (GUIDE.md §6).
const connectAttempts = 5

// setupTimeout bounds one connection attempt and one teardown wait.
const setupTimeout = 10 * time.Second

// BenchmarkConnectionSetup measures connection setup between two real kith
// nodes on loopback: dial, security handshake (Noise over TCP, TLS 1.3 in
// QUIC), muxer and identify, as host.Connect waits for identify. Teardown is
// not timed. tcp-raw is the ceiling measured in the same run, the fastest a
// connection can be set up here: a bare TCP connect and accept on 127.0.0.1.
// It runs first, so tcp and quic also report their time as a multiple of it
// (x-tcp-raw).
func BenchmarkConnectionSetup(b *testing.B) {
	var rawNs float64
	b.Run("tcp-raw", func(b *testing.B) { rawNs = benchRawTCP(b) })
	for _, tc := range []struct{ name, listen string }{
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ns := benchSetup(b, tc.listen)
			if rawNs > 0 { // 0 when -bench filtered tcp-raw out
				b.ReportMetric(ns/rawNs, "x-tcp-raw")
			}
		})
	}
}

// benchRawTCP times net.Dial to a loopback listener until the listener has
// accepted the connection, and returns ns/op.
func benchRawTCP(b *testing.B) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	accepted := make(chan net.Conn)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return // the listener is closed
			}
			select {
			case accepted <- c:
			case <-b.Context().Done(): // the benchmark failed
				c.Close()
				return
			}
		}
	})
	b.Cleanup(func() { l.Close(); wg.Wait() })
	d := net.Dialer{Timeout: setupTimeout}
	for b.Loop() {
		c, err := d.DialContext(b.Context(), "tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, ok := <-accepted
		if !ok {
			b.Fatal("listener closed")
		}
		b.StopTimer()
		// The accepting side closes first, so TIME_WAIT lands on its side
		// rather than on the dialer's ephemeral ports.
		s.Close()
		c.Close()
		b.StartTimer()
	}
	return nsPerOp(b)
}

// benchSetup times from.Host().Connect(to) between two nodes listening only
// on listen, tears the connection down (untimed) and returns ns/op. The time
// of failed attempts counts; retries/op says how often that happened.
// The nodes' own services (the DHT querying a peer it has just met) sometimes
// dial each other too: extra-conns/op counts the connections teardown found
// besides the one Connect dialed, and found/op the iterations in which Connect
// dialed nothing because it found a connection already open; those measure
// less than a full setup.
func benchSetup(b *testing.B, listen string) float64 {
	only := func(cfg *node.Config) { cfg.Network.Listen = []string{listen} }
	from, to := nodetest.Start(b, only), nodetest.Start(b, only)
	target := peer.AddrInfo{ID: to.ID(), Addrs: to.Host().Addrs()}
	pair := watchPair(b, from, to)
	retries, extra, found := 0, 0, 0
	for b.Loop() {
		began := time.Now()
		retries += connectRetrying(b, pair, target)
		b.StopTimer()
		own := pair.dialed(began)
		if !own {
			found++
		}
		extra += pair.teardown(b)
		if own {
			extra--
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(retries)/float64(b.N), "retries/op")
	b.ReportMetric(float64(extra)/float64(b.N), "extra-conns/op")
	b.ReportMetric(float64(found)/float64(b.N), "found/op")
	return nsPerOp(b)
}

// connectRetrying sets up a connection from pair.from to target, retrying
// a failed attempt up to connectAttempts in all, and returns the number of
// retries. Between attempts it tears down what is left (untimed) and clears
// the dial backoff the failure left behind.
func connectRetrying(b *testing.B, pair *pairWatch, target peer.AddrInfo) (retries int) {
	h := pair.from.Host()
	for attempt := 1; ; attempt++ {
		err := connect(b.Context(), h, target)
		if err == nil {
			return attempt - 1
		}
		if attempt == connectAttempts {
			b.Fatalf("connect: %d attempts failed, last: %v", attempt, err)
		}
		b.StopTimer()
		b.Logf("connect attempt %d: %v (retrying)", attempt, err)
		pair.teardown(b)
		sw, ok := h.Network().(*swarm.Swarm)
		if !ok {
			b.Fatalf("host network is %T, want *swarm.Swarm", h.Network())
		}
		sw.Backoff().Clear(target.ID)
		b.StartTimer()
	}
}

// connect is one attempt at connection setup. A connection that was closed
// again during setup does not count.
func connect(ctx context.Context, h host.Host, target peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := h.Connect(ctx, target); err != nil {
		return err
	}
	if h.Network().Connectedness(target.ID) != network.Connected {
		return errors.New("connection closed during setup")
	}
	return nil
}

// pairWatch follows the connections between two nodes. It listens to the
// swarms' per-connection notifications rather than to
// EvtPeerConnectednessChanged: that event only reports changes of the peer's
// state, so a connection that a service reopens before the old one has closed
// emits nothing and a wait on it would hang.
type pairWatch struct {
	from, to *node.Node
	changed  chan struct{} // a connection between the two opened or closed
}

func watchPair(b *testing.B, from, to *node.Node) *pairWatch {
	w := &pairWatch{from: from, to: to, changed: make(chan struct{}, 1)}
	signal := func(_ network.Network, c network.Conn) {
		if p := c.RemotePeer(); p == from.ID() || p == to.ID() {
			select {
			case w.changed <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
	nb := &network.NotifyBundle{ConnectedF: signal, DisconnectedF: signal}
	for _, n := range []*node.Node{from, to} {
		n.Host().Network().Notify(nb)
		b.Cleanup(func() { n.Host().Network().StopNotify(nb) })
	}
	return w
}

// dialed reports whether from has dialed a connection to "to" since began,
// that is, whether Connect set up a connection rather than finding one open.
func (w *pairWatch) dialed(began time.Time) bool {
	for _, c := range w.from.Host().Network().ConnsToPeer(w.to.ID()) {
		if c.Stat().Direction == network.DirOutbound && !c.Stat().Opened.Before(began) {
			return true
		}
	}
	return false
}

// teardown closes from's connections to "to" and returns once neither node
// has a connection to the other. from keeps closing connections to "to" until
// none are left, so a connection that a service of either node opens in the
// meantime (or that was still being upgraded when teardown began) is closed
// too. It returns how many connections it closed.
func (w *pairWatch) teardown(b *testing.B) (closed int) {
	ctx, cancel := context.WithTimeout(b.Context(), setupTimeout)
	defer cancel()
	fromNet, toNet := w.from.Host().Network(), w.to.Host().Network()
	done := map[network.Conn]bool{}
	for {
		for _, c := range fromNet.ConnsToPeer(w.to.ID()) {
			if !done[c] {
				done[c] = true
				c.Close()
			}
		}
		if len(fromNet.ConnsToPeer(w.to.ID())) == 0 && len(toNet.ConnsToPeer(w.from.ID())) == 0 {
			return len(done)
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			b.Fatalf("teardown: %v; still open: %s", ctx.Err(), w.describe())
		}
	}
}

// describe lists the open connections between the two nodes.
func (w *pairWatch) describe() string {
	var out []string
	for _, s := range []struct {
		name string
		n    *node.Node
		p    peer.ID
	}{{"from", w.from, w.to.ID()}, {"to", w.to, w.from.ID()}} {
		for _, c := range s.n.Host().Network().ConnsToPeer(s.p) {
			var streams []string
			for _, st := range c.GetStreams() {
				streams = append(streams, string(st.Protocol()))
			}
			out = append(out, fmt.Sprintf("%s: %s %s->%s, opened %v ago, closed=%v, streams %v",
				s.name, c.Stat().Direction, c.LocalMultiaddr(), c.RemoteMultiaddr(),
				time.Since(c.Stat().Opened).Round(time.Millisecond), c.IsClosed(), streams))
		}
	}
	return strings.Join(out, "; ")
}

// nsPerOp is the timed duration per iteration, once b.Loop is done.
func nsPerOp(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
