package node_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// startBootstrap starts a bootstrap node (a relay, as `kith relay` is)
// listening on TCP at listen, in home cfg (so a restart on the same cfg keeps
// its identity), and returns it with its address as a user would type it:
// /ip4/127.0.0.1/tcp/PORT/p2p/ID.
func startBootstrap(t *testing.T, cfg node.Config, listen string) (*node.Node, string) {
	t.Helper()
	cfg.Relay.Enabled = true
	cfg.Network.Listen = []string{listen}
	b, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatalf("start bootstrap node on %s: %v", listen, err)
	}
	t.Cleanup(func() { b.Close() })
	for _, a := range b.Host().Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return b, a.Encapsulate(ma.StringCast("/p2p/" + b.ID().String())).String()
		}
	}
	t.Fatal("bootstrap node has no TCP address")
	return nil, ""
}

// bootstrapOf returns a's bootstrap status, failing if it has none.
func bootstrapOf(t *testing.T, a *node.Node) node.BootstrapStatus {
	t.Helper()
	st := a.Status().Bootstrap
	if st == nil {
		t.Fatal("status has no bootstrap field although the node has a bootstrap peer")
	}
	return *st
}

// pollWithin polls cond every 20 ms until it holds, failing after bound (a
// bound on a broken test, not a timing assumption).
func pollWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
	}
}

// dialCounter accepts TCP connections on the port a stopped bootstrap node
// listened on, closes each at once (the dialler's handshake fails, as
// against a port nobody serves) and notes when each came.
type dialCounter struct {
	ln   net.Listener
	done chan struct{}
	mu   sync.Mutex
	at   []time.Time
}

func countDials(t *testing.T, addr string) *dialCounter {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the bootstrap node's old address %s: %v", addr, err)
	}
	d := &dialCounter{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.at = append(d.at, time.Now())
			d.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(d.stop)
	return d
}

// stop closes the listener and returns the times of the dials it saw.
func (d *dialCounter) stop() {
	d.ln.Close()
	<-d.done
}

func (d *dialCounter) times() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.at)
}

// TestBootstrapDownBacksOffAndRejoins is F10: every bootstrap node of a node
// goes down, so it is connected to no peer of its routing tables. It must
// retry with back-off, not at its check interval, say so in its status, and
// when the bootstrap node comes back on the same address and identity
// rejoin the DHT by itself, so that lookups work again.
func TestBootstrapDownBacksOffAndRejoins(t *testing.T) {
	const (
		every            = 50 * time.Millisecond // how often a checks its DHT connection
		floor, ceiling   = 200 * time.Millisecond, 1600 * time.Millisecond
		rounds           = 8 // failed rounds to watch: 200, 400, 800 ms, then the 1.6 s cap
		kadDials         = 2 // kad-dht's own re-dials of a bootstrap peer (one per half) when its table empties
		rejoinBound      = time.Minute
		schedule         = 200*time.Millisecond + 400*time.Millisecond + 800*time.Millisecond + 4*1600*time.Millisecond
		nextRetryLongest = ceiling + ceiling/4
	)
	bootCfg := nodetest.Config(t)
	boot, bootAddr := startBootstrap(t, bootCfg, "/ip4/127.0.0.1/tcp/0")
	cfg := nodetest.Config(t)
	cfg.Network.Bootstrap = []string{bootAddr}
	a, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)),
		node.WithBootstrapInterval(every), node.WithBootstrapBackoff(floor, ceiling))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if st := bootstrapOf(t, a); st.State != node.BootstrapConnected || st.Failures != 0 {
		t.Fatalf("after New with its bootstrap node up: bootstrap status %+v, want connected", st)
	}

	// Every bootstrap node goes down; its port now counts a's dials.
	tcpAddr, _ := ma.SplitFunc(ma.StringCast(bootAddr), func(c ma.Component) bool { return c.Code() == ma.P_P2P })
	_, hostPort, err := manet.DialArgs(tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	boot.Close()
	down := time.Now()
	dials := countDials(t, hostPort)
	pollWithin(t, 2*time.Minute, "a retrying its bootstrap node", func() bool {
		st := bootstrapOf(t, a)
		return st.State == node.BootstrapRetrying && st.Failures >= rounds
	})
	failedBy := time.Since(down)
	st := bootstrapOf(t, a)
	if st.NextRetry == nil || st.LastError == "" {
		t.Fatalf("retrying, the status says neither when nor why: %+v", st)
	}
	if wait := time.Until(*st.NextRetry); wait > nextRetryLongest {
		t.Errorf("next retry in %s, beyond the cap %s and its jitter", wait, ceiling)
	}
	dials.stop()
	seen := dials.times()
	failures := bootstrapOf(t, a).Failures
	// Each round dials the bootstrap address once; kad-dht adds its own
	// (rate-limited by the swarm's dial back-off). Without back-off a would
	// have dialled every 50 ms: ~100 times in this window.
	if len(seen) > failures+kadDials {
		t.Errorf("the bootstrap address saw %d dials in %d failed rounds: more than one a round (+%d of kad-dht)",
			len(seen), failures, kadDials)
	}
	if len(seen) < rounds/2 {
		t.Errorf("the bootstrap address saw only %d dials in %d failed rounds", len(seen), failures)
	}
	// The rounds are spaced by the back-off: reaching `rounds` failures takes
	// at least the schedule's sum (jitter only adds).
	if failedBy < schedule {
		t.Errorf("%d failed rounds within %s of the bootstrap node going down: faster than the back-off (%s)",
			rounds, failedBy, schedule)
	}
	var gaps []time.Duration
	for i := 1; i < len(seen); i++ {
		gaps = append(gaps, seen[i].Sub(seen[i-1]).Round(time.Millisecond))
	}
	t.Logf("bootstrap down: %d failed rounds in %s; %d dials seen at its address, gaps %v; status %+v",
		failures, failedBy.Round(time.Millisecond), len(seen), gaps, st)

	// The bootstrap node comes back on the same address with the same
	// identity: a rejoins by itself.
	back := time.Now()
	boot2, bootAddr2 := startBootstrap(t, bootCfg, tcpAddr.String())
	if bootAddr2 != bootAddr {
		t.Fatalf("restarted bootstrap node is %s, was %s", bootAddr2, bootAddr)
	}
	pollWithin(t, rejoinBound, "a rejoining the DHT after its bootstrap node came back", func() bool {
		st := bootstrapOf(t, a)
		return st.State == node.BootstrapConnected && st.Failures == 0 && a.Status().DHTPeers > 0
	})
	t.Logf("rejoined %s after the bootstrap node came back; status %+v",
		time.Since(back).Round(time.Millisecond), bootstrapOf(t, a))

	// A DHT lookup works again: a finds a peer that joined since, through
	// the bootstrap node, without knowing its address.
	c := nodetest.Start(t, func(cfg *node.Config) { cfg.Network.Bootstrap = []string{bootAddr} })
	if boot2.Host().Network().Connectedness(c.ID()) != network.Connected {
		t.Fatal("c is not connected to the restarted bootstrap node")
	}
	if len(a.Host().Peerstore().Addrs(c.ID())) != 0 {
		t.Fatal("a knows c's addresses before looking it up")
	}
	var found peer.AddrInfo
	pollWithin(t, time.Minute, "a finding c through the DHT", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		found, err = a.DHT().FindPeer(ctx, c.ID())
		return err == nil && len(found.Addrs) > 0
	})
	if err := a.Host().Connect(t.Context(), found); err != nil {
		t.Fatalf("dial c at the addresses the DHT gave: %v", err)
	}
}

// TestContactReachableWithBootstrapDown is F10's "known peers from the local
// address book still dialable": a node that met a contact through the DHT
// (the contact added by peer ID, so no address came with it) keeps the
// contact's addresses, and after a restart with every bootstrap node down,
// so that the DHT finds nothing, it still reaches the contact: a direct
// message is acked and a ping answered.
func TestContactReachableWithBootstrapDown(t *testing.T) {
	w := nothingLost(t)
	boot := w.start(nodetest.Relay)
	cfg := nodetest.Config(t)
	cfg.Network.Bootstrap = nodetest.P2PAddrs(boot)
	a, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() }) // registered first: runs after w reads the listings
	w.add(a)
	c := w.start(nodetest.BootstrapFrom(boot))
	ctx := t.Context()
	if _, err := a.AddContact(ctx, "cy", c.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddContact(ctx, "ana", a.ID().String()); err != nil {
		t.Fatal(err)
	}
	sendAcked(t, a, "cy", "found through the DHT")
	pollWithin(t, time.Minute, "a keeping cy's addresses", func() bool {
		cs, err := a.Contacts(ctx)
		return err == nil && len(cs) == 1 && len(cs[0].Addrs) > 0
	})

	// Every bootstrap node goes down, and a restarts: only what it stored
	// can take it to cy.
	boot.Close()
	a.Close()
	a2, err := node.New(cfg, node.WithLogger(nodetest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	w.add(a2)
	if st := bootstrapOf(t, a2); st.State != node.BootstrapRetrying || st.Failures == 0 {
		t.Fatalf("restarted with the bootstrap node down: bootstrap status %+v, want retrying", st)
	}
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = a2.DHT().FindPeer(ctx2, c.ID())
	cancel()
	if err == nil {
		t.Fatal("the DHT found cy with every bootstrap node down: the test proves nothing")
	}
	sendAcked(t, a2, "cy", "with the bootstrap node down")
	var pinged bool
	err = a2.Ping(ctx, "cy", 1, 0, func(r node.PingResult) { pinged = r.PeerID == c.ID().String() })
	if err != nil || !pinged {
		t.Fatalf("ping cy with the bootstrap node down: %v (answered: %v)", err, pinged)
	}
}

// sendAcked sends text from n to target and waits (a minute at most) for
// the receiver's ack.
func sendAcked(t *testing.T, n *node.Node, target, text string) {
	t.Helper()
	events, cancel := n.Events().Subscribe()
	defer cancel()
	m, err := n.SendMessage(t.Context(), target, text)
	if err != nil {
		t.Fatalf("send to %s: %v", target, err)
	}
	if m.State != "delivered" {
		waitMessage(t, events, func(x node.MessageInfo) bool { return x.ID == m.ID && x.State == "delivered" })
	}
}

// A peer we are already connected to (met through the DHT, mDNS or a
// room) and then add as a contact: its identify came before it was a
// contact, and its addresses are kept all the same (found by
// TestContactReachableWithBootstrapDown under load, where the DHT connected
// the two before the test added the contact).
func TestContactAddedWhileConnectedKeepsAddrs(t *testing.T) {
	a, c := nodetest.Start(t), nodetest.Start(t)
	if err := a.Host().Connect(t.Context(), peer.AddrInfo{ID: c.ID(), Addrs: c.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	pollWithin(t, time.Minute, "a identifying c", func() bool {
		ps, err := a.Host().Peerstore().GetProtocols(c.ID())
		return err == nil && len(ps) > 0
	})
	if _, err := a.AddContact(t.Context(), "cy", c.ID().String()); err != nil {
		t.Fatal(err)
	}
	cs, err := a.Contacts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || len(cs[0].Addrs) == 0 {
		t.Fatalf("contacts %+v: want cy with the addresses it listens on", cs)
	}
}
