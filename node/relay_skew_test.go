package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// skewTTL is the relays' reservation lifetime in TestF7RelayReservationSkew:
// long enough that go-libp2p's AutoRelay, which refreshes a reservation 2
// minutes before its stated expiry and looks once a minute, keeps it when
// clocks agree (the control "0"), short enough to see it lapse.
const skewTTL = 2 * time.Minute

// skewSpan is how long each case probes: more than a reservation's
// lifetime plus the minute a go-libp2p relay may take to forget an expired
// one (it sweeps once a minute).
const skewSpan = skewTTL + 80*time.Second

// TestF7RelayReservationSkew: F7's third criterion. A circuit v2
// reservation states its expiry as an absolute UNIX time on the relay's
// clock. A node behind NAT whose clock is off from its relay's by
// −1 day, −1 h, 0, +1 h or +1 day reserves on it (AutoRelay with static
// relays, as `kith daemon` with network.relays, plus kith's keeper), and a
// third peer that the node cannot dial connects to it through the relay,
// at the relay addresses the node reports, and pings it, every 5 s for
// longer than a reservation's lifetime plus the relay's sweep: every probe
// must be answered through the relay, and the node must report an address
// through the relay at every probe.
//
// The skew is injected at the relay: it states its times as a clock off by
// the opposite amount would (WithRelayClock), while the node's clock is the
// real one. go-libp2p's reservation client reads time.Now itself (the
// "expiration in the past" check), so a skewed clock given to the node
// (autorelay.WithClock) would reach AutoRelay's refresh but not that check,
// and would model a clock running ahead wrongly; the relay's stated expiry
// is the only place its clock reaches the node, so skewing it models the
// difference exactly.
//
// The control runs go-libp2p's AutoRelay alone, as kith did before
// relay_keep.go: it keeps the reservation with clocks agreeing and loses
// it with every skew. Behind by 1 h or 1 day, it refreshes an hour or a
// day late and the relay forgets the reservation meanwhile; ahead, it
// refuses what the relay granted ("expiration date in the past") and backs
// off for an hour, and the relay forgets that reservation too. AutoRelay
// advertises no address through a relay whose addresses are all private
// (loopback here), so the control's probes use the relay's address, as a
// peer would read it from the node's addresses on the internet.
func TestF7RelayReservationSkew(t *testing.T) {
	nothingLost(t)
	const day = 24 * time.Hour
	cases := []*skewCase{
		{skew: -day, keep: true}, {skew: -time.Hour, keep: true}, {skew: 0, keep: true},
		{skew: time.Hour, keep: true}, {skew: day, keep: true},
		{skew: 0}, {skew: -day, lapses: true}, {skew: -time.Hour, lapses: true},
		{skew: time.Hour, lapses: true}, {skew: day, lapses: true},
	}
	// Every case runs at once (subtests would run two at a time here: the
	// default -parallel is GOMAXPROCS), then each is judged in a subtest.
	var wg sync.WaitGroup
	for _, c := range cases {
		c.relay, c.node = skewedPair(t, c.skew, c.keep, &c.granted)
		c.prober = listenlessHost(t)
		wg.Go(func() { c.run(t.Context()) })
	}
	wg.Wait()
	for _, c := range cases {
		t.Run(c.name(), c.judge)
	}
}

// A skewCase is one node and its relay, their clocks off by skew.
type skewCase struct {
	skew   time.Duration // node's clock minus the relay's
	keep   bool          // kith's reservation keeper on (the fix); off: the control
	lapses bool          // the control expects the reservation to lapse

	relay, node *node.Node
	prober      host.Host
	granted     atomic.Int64 // reservations the relay granted

	ok, failed, noAddr int // probes answered, failed, and made while the node reported no relay address
	retried            int // probes answered on a second or third try
	firstFail          time.Duration
	firstNoAddr        time.Duration
	firstErr           error
}

func (c *skewCase) name() string {
	if c.keep {
		return fmt.Sprintf("node %v off", c.skew)
	}
	return fmt.Sprintf("control AutoRelay alone, node %v off", c.skew)
}

// run waits up to 30 s for the relay to grant a reservation and, with
// the keeper, for the node to report an address through the relay, then
// probes the node every 5 s for skewSpan.
func (c *skewCase) run(ctx context.Context) {
	ready := func() bool {
		return c.granted.Load() > 0 && (!c.keep || len(circuitAddrsVia(c.node, c.relay.ID())) > 0)
	}
	for deadline := time.Now().Add(30 * time.Second); !ready() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	start := time.Now()
	for time.Since(start) < skewSpan && ctx.Err() == nil {
		next := time.Now().Add(5 * time.Second)
		if len(circuitAddrsVia(c.node, c.relay.ID())) == 0 {
			if c.noAddr == 0 {
				c.firstNoAddr = time.Since(start).Round(time.Second)
			}
			c.noAddr++
		}
		if err := c.probe(ctx); err != nil {
			if c.failed == 0 {
				c.firstFail, c.firstErr = time.Since(start).Round(time.Second), err
			}
			c.failed++
		} else {
			c.ok++
		}
		time.Sleep(time.Until(next)) // pacing, not synchronisation
	}
}

// probe is one probe: up to three tries (a fresh connection to the same
// peer made right after closing the last sometimes fails transiently).
func (c *skewCase) probe(ctx context.Context) error {
	var err error
	for try := range 3 {
		target := circuitTo(c.relay, c.node.ID())
		if reported := circuitAddrsVia(c.node, c.relay.ID()); c.keep && len(reported) > 0 {
			target.Addrs = reported // what the node advertises
		}
		if err = probe(ctx, c.prober, target); err == nil {
			if try > 0 {
				c.retried++
			}
			return nil
		}
	}
	return err
}

func (c *skewCase) judge(t *testing.T) {
	var failed, noAddr string
	if c.failed > 0 {
		failed = fmt.Sprintf(" (first at %v: %v)", c.firstFail, c.firstErr)
	}
	if c.noAddr > 0 {
		noAddr = fmt.Sprintf(" (first at %v)", c.firstNoAddr)
	}
	t.Logf("%d probes through the relay over %v: %d answered (%d on a retry), %d failed%s; "+
		"node reported no relay address at %d%s; relay granted %d reservations",
		c.ok+c.failed, skewSpan, c.ok, c.retried, c.failed, failed, c.noAddr, noAddr, c.granted.Load())
	if c.granted.Load() == 0 {
		t.Fatalf("the relay granted no reservation")
	}
	switch {
	case c.keep && (c.failed > 0 || c.noAddr > 0):
		t.Errorf("%d probes failed, %d made while the node reported no relay address; want none", c.failed, c.noAddr)
	case !c.keep && !c.lapses && c.failed > 0:
		t.Errorf("%d probes failed; AutoRelay alone with clocks agreeing wants none", c.failed)
	case !c.keep && c.lapses && c.failed == 0:
		t.Errorf("every probe answered; the control wants the reservation to lapse")
	}
}

// skewedPair starts a relay with reservations of skewTTL whose clock
// states times skew behind the node's, counting in granted the
// reservations it grants, and a node behind "NAT" (forced private) that
// uses it, with or without kith's reservation keeper.
func skewedPair(t *testing.T, skew time.Duration, keep bool, granted *atomic.Int64) (relay, n *node.Node) {
	t.Helper()
	ncfg := nodetest.Config(t)
	key, _, err := node.LoadIdentity(ncfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	rcfg := nodetest.Config(t)
	nodetest.Relay(&rcfg)
	rcfg.Relay.Allow = []string{id.String()}
	relay, err = node.New(rcfg, node.WithLogger(nodetest.Logger(t)), node.WithForcedPublic(),
		node.WithRelayReservationTTL(skewTTL), node.WithRelayClock(-skew, granted))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	ncfg.Network.Relays = nodetest.P2PAddrs(relay)
	ncfg.DHT.Mode = "client"
	opts := []node.Option{node.WithLogger(nodetest.Logger(t)), node.WithForcedPrivate(),
		node.WithRelayReservationTTL(skewTTL)}
	if !keep {
		opts = append(opts, node.WithoutRelayKeeper())
	}
	n, err = node.New(ncfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return relay, n
}

// listenlessHost is a third peer nobody can dial: it reaches the node
// only through the relay, and the node cannot dial it back directly.
func listenlessHost(t *testing.T) host.Host {
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.EnableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// circuitAddrsVia are n's reported addresses through relay r.
func circuitAddrsVia(n *node.Node, r peer.ID) []ma.Multiaddr {
	return slices.DeleteFunc(n.Host().Addrs(), func(a ma.Multiaddr) bool {
		return !strings.Contains(a.String(), "/p2p/"+r.String()+"/p2p-circuit")
	})
}

// probe connects p afresh to the node at target (its addresses through
// the relay), pings it and checks that the ping went through the relay.
func probe(ctx context.Context, p host.Host, target peer.AddrInfo) error {
	p.Network().ClosePeer(target.ID)
	p.Peerstore().ClearAddrs(target.ID)
	if sw, ok := p.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(target.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.Connect(ctx, target); err != nil {
		return fmt.Errorf("connect through the relay: %w", err)
	}
	res := <-ping.Ping(ctx, p, target.ID)
	if res.Error != nil {
		return fmt.Errorf("ping: %w", res.Error)
	}
	for _, c := range p.Network().ConnsToPeer(target.ID) {
		if !strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
			return fmt.Errorf("a direct connection to the node: %v", c.RemoteMultiaddr())
		}
	}
	return nil
}
