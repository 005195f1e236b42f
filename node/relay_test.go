package node_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/nodetest"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startRelay starts a relay on loopback that relays from the start.
func startRelay(t testing.TB, edit func(*node.Config)) *node.Node {
	t.Helper()
	return startRelayOpts(t, edit)
}

// startRelayOpts is startRelay with node options.
func startRelayOpts(t testing.TB, edit func(*node.Config), opts ...node.Option) *node.Node {
	t.Helper()
	cfg := nodetest.Config(t)
	nodetest.Relay(&cfg)
	if edit != nil {
		edit(&cfg)
	}
	opts = append([]node.Option{node.WithLogger(nodetest.Logger(t)), node.WithForcedPublic()}, opts...)
	r, err := node.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func bareHost(t testing.TB) host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func relayInfo(r *node.Node) peer.AddrInfo {
	return peer.AddrInfo{ID: r.ID(), Addrs: r.Host().Addrs()}
}

// circuitTo is the address of target through relay r.
func circuitTo(r *node.Node, target peer.ID) peer.AddrInfo {
	a := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
	var addrs []ma.Multiaddr
	for _, ra := range r.Host().Addrs() {
		addrs = append(addrs, ra.Encapsulate(a))
	}
	return peer.AddrInfo{ID: target, Addrs: addrs}
}

func refused(t *testing.T, r *node.Node, reason string) float64 {
	t.Helper()
	mfs, err := r.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kith_relay_reservations_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestClosedRelayRefusesStrangers(t *testing.T) {
	friend := nodetest.Start(t)
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Closed = true
		cfg.Relay.Allow = []string{friend.ID().String()}
	})
	if st := r.Status(); st.Relaying == nil || !*st.Relaying {
		t.Fatalf("relay status: relaying=%v", st.Relaying)
	}
	if _, err := circuitclient.Reserve(t.Context(), friend.Host(), relayInfo(r)); err != nil {
		t.Fatalf("allowed peer's reservation: %v", err)
	}
	stranger := nodetest.Start(t)
	if _, err := circuitclient.Reserve(t.Context(), stranger.Host(), relayInfo(r)); err == nil {
		t.Fatal("a closed relay gave a stranger a reservation")
	}
	if got := refused(t, r, "not_allowed"); got != 1 {
		t.Fatalf("refused reservations metric = %v, want 1", got)
	}
}

// An open relay carries colleagues under the operator's limits and
// strangers under go-libp2p's default ones (128 KiB per circuit): enough to
// coordinate hole punching, not to move files.
func TestOpenRelayLimitsStrangers(t *testing.T) {
	// Bare hosts, so that nothing but the relay introduces them.
	ana, s1, s2 := bareHost(t), bareHost(t), bareHost(t)
	r := startRelay(t, func(cfg *node.Config) { cfg.Relay.Allow = []string{ana.ID().String()} })
	for _, h := range []host.Host{ana, s1} {
		if _, err := circuitclient.Reserve(t.Context(), h, relayInfo(r)); err != nil {
			t.Fatalf("reservation on an open relay: %v", err)
		}
	}
	const oneMiB = 1 << 20
	if got := sendThrough(t, s2, circuitTo(r, s1.ID()), s1, oneMiB); got >= oneMiB || got < 1<<16 {
		t.Errorf("stranger to stranger carried %d bytes, want the default limit (128 KiB)", got)
	}
	if got := sendThrough(t, s2, circuitTo(r, ana.ID()), ana, oneMiB); got != oneMiB {
		t.Errorf("stranger to colleague carried %d of %d bytes", got, oneMiB)
	}
}

// sendThrough writes n bytes from src to dst over the relayed address and
// returns how many dst received before the stream ended.
func sendThrough(t *testing.T, src host.Host, via peer.AddrInfo, dst host.Host, n int) int {
	t.Helper()
	got := make(chan int, 1)
	dst.SetStreamHandler(sinkProtocol, func(s network.Stream) {
		c, _ := io.Copy(io.Discard, s)
		s.Close()
		got <- int(c)
	})
	ctx := network.WithAllowLimitedConn(t.Context(), "test")
	if err := src.Connect(ctx, via); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	st, err := src.NewStream(ctx, dst.ID(), sinkProtocol)
	if err != nil {
		t.Fatalf("stream through the relay: %v", err)
	}
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := st.Write(buf); err != nil {
			break // the relay cut the circuit
		}
	}
	st.CloseWrite()
	select {
	case c := <-got:
		st.Close()
		return c
	case <-time.After(time.Minute):
		t.Fatal("the receiving end never finished")
	}
	return 0
}

// A message and a ping reach a peer through the relay; the ping says so.
func TestRelayedPingAndMessage(t *testing.T) {
	// DHT clients: they must not discover each other's direct addresses
	// through the relay's DHT, only the relayed one they are given.
	client := func(cfg *node.Config) { cfg.DHT.Mode = "client" }
	ana, ben := nodetest.Start(t, client), nodetest.Start(t, client)
	r := startRelay(t, func(cfg *node.Config) {
		cfg.Relay.Allow = []string{ana.ID().String(), ben.ID().String()}
	})
	if _, err := circuitclient.Reserve(t.Context(), ben.Host(), relayInfo(r)); err != nil {
		t.Fatal(err)
	}
	// ana knows ben only by his relayed address.
	circ := circuitTo(r, ben.ID())
	ana.Host().Peerstore().AddAddrs(ben.ID(), circ.Addrs, peerstore.TempAddrTTL)
	var got []node.PingResult
	err := ana.Ping(t.Context(), ben.ID().String(), 2, 0, func(p node.PingResult) { got = append(got, p) })
	if err != nil {
		t.Fatalf("relayed ping: %v", err)
	}
	for _, p := range got {
		if p.Path != node.PathRelayed || p.Relay != r.ID().String() || !strings.Contains(p.Addr, "/p2p-circuit") {
			t.Errorf("ping result %+v, want relayed via %s", p, r.ID())
		}
	}
	// (Byte counts are swept into the totals once a second, so their values
	// are not asserted here; the series are.)
	if got := testutil.CollectAndCount(r.Metrics(), "kith_relay_relayed_bytes_total"); got != 2 {
		t.Errorf("relayed byte series = %d, want in and out", got)
	}
	if got := testutil.CollectAndCount(r.Metrics(), "kith_relay_peer_bytes_total"); got != 2*3 {
		t.Errorf("per-peer byte series = %d, want in/out for ana, ben and other", got)
	}
	// Contacts by peer ID only: no direct address is handed over.
	if _, err := ana.AddContact(t.Context(), "ben", ben.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.AddContact(t.Context(), "ana", ana.ID().String()); err != nil {
		t.Fatal(err)
	}
	m, err := ana.SendMessage(context.Background(), "ben", "via the relay")
	if err != nil || m.State != "delivered" {
		t.Fatalf("relayed message: %+v %v", m, err)
	}
}

// An undeclared relay on loopback (nobody can confirm it) does not relay,
// and its status says so.
func TestUndeclaredRelayNotRelaying(t *testing.T) {
	r := nodetest.Start(t, nodetest.Relay)
	st := r.Status()
	if st.Relaying == nil || *st.Relaying {
		t.Fatalf("status relaying = %v, want false", st.Relaying)
	}
}
