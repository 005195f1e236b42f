package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	addrTCP  = "/ip4/203.0.113.5/tcp/4011"
	addrQUIC = "/ip4/203.0.113.5/udp/4011/quic-v1"
)

func mas(ss ...string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// A relay serves while any public address is known reachable (AutoNAT v2 or
// its own check: per address, outweighing v1), not once every known one is
// unreachable, and, while it knows of none, as AutoNAT v1 says, else only
// when the operator declared it reachable.
func TestRelayServesWhenReachable(t *testing.T) {
	tests := []struct {
		name     string
		declared bool
		v1       network.Reachability
		reach    reachState
		want     bool
	}{
		{"nothing known, declared", true, network.ReachabilityUnknown, reachState{}, true},
		{"nothing known, not declared", false, network.ReachabilityUnknown, reachState{}, false},
		{"v1 public", false, network.ReachabilityPublic, reachState{}, true},
		{"v1 private, declared", true, network.ReachabilityPrivate, reachState{}, false},
		{"reachable", false, network.ReachabilityUnknown, reachState{addrTCP: true}, true},
		{"reachable, v1 private", false, network.ReachabilityPrivate, reachState{addrTCP: true}, true},
		{"one of two reachable", false, network.ReachabilityUnknown, reachState{addrTCP: false, addrQUIC: true}, true},
		{"unreachable, declared", true, network.ReachabilityUnknown, reachState{addrTCP: false}, false},
		{"unreachable, v1 public", false, network.ReachabilityPublic, reachState{addrTCP: false}, false},
		{"both unreachable, declared, v1 public", true, network.ReachabilityPublic, reachState{addrTCP: false, addrQUIC: false}, false},
	}
	for _, tt := range tests {
		if got := relayShouldServe(tt.declared, tt.v1, tt.reach); got != tt.want {
			t.Errorf("%s: relayShouldServe = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// What the relay knows of an address is what was said last: AutoNAT v2's
// events count only for what they change (the tracker restates a belief it
// has not re-checked for up to an hour), the relay's own check overrides
// them, and an address the relay no longer has is forgotten.
func TestReachStateFollowsTheNewest(t *testing.T) {
	s := reachState{}
	s.applyEvent(nil, mas(addrTCP, addrQUIC), true)
	if r, u := s.split(); len(r) != 2 || len(u) != 0 {
		t.Fatalf("after AutoNAT v2 confirmed both: reachable %v, unreachable %v", r, u)
	}
	changed := s.applyCheck(map[string]bool{addrTCP: false, addrQUIC: false}, []string{addrTCP, addrQUIC})
	if len(changed) != 2 || relayShouldServe(true, network.ReachabilityPublic, s) {
		t.Fatalf("after the check found both unreachable: changed %v, state %v", changed, s)
	}
	// The tracker emits again (another address changed) and restates its
	// old belief: not news.
	s.applyEvent(mas(addrTCP, addrQUIC), mas(addrTCP, addrQUIC), true)
	if relayShouldServe(true, network.ReachabilityPublic, s) {
		t.Fatalf("a restated old belief overrode a newer check: %v", s)
	}
	// A round that learnt nothing keeps what is known.
	if changed := s.applyCheck(nil, []string{addrTCP, addrQUIC}); len(changed) != 0 || len(s) != 2 {
		t.Fatalf("an empty round changed %v: %v", changed, s)
	}
	// The tracker newly confirms one: news.
	s.applyEvent(nil, mas(addrQUIC), true)
	if !s[addrQUIC] || !relayShouldServe(false, network.ReachabilityUnknown, s) {
		t.Fatalf("a new confirmation was ignored: %v", s)
	}
	s.applyCheck(nil, []string{addrTCP})
	if _, ok := s[addrQUIC]; ok {
		t.Fatalf("an address the relay no longer has is still known: %v", s)
	}
}

func TestReachVerdict(t *testing.T) {
	pub, priv := network.ReachabilityPublic, network.ReachabilityPrivate
	tests := []struct {
		answers          []network.Reachability
		asked            int
		reachable, known bool
	}{
		{nil, 2, false, false},
		{[]network.Reachability{pub}, 2, true, true},
		{[]network.Reachability{priv, pub}, 2, true, true},
		{[]network.Reachability{priv}, 2, false, false}, // one of two could not: not enough
		{[]network.Reachability{priv, priv}, 2, false, true},
		{[]network.Reachability{priv}, 1, false, true}, // the only colleague there is
	}
	for _, tt := range tests {
		r, k := reachVerdict(tt.answers, tt.asked)
		if r != tt.reachable || k != tt.known {
			t.Errorf("reachVerdict(%v, %d) = %v, %v; want %v, %v", tt.answers, tt.asked, r, k, tt.reachable, tt.known)
		}
	}
}

// A QUIC address no colleague could check independently takes the verdict
// of the TCP address on the same IP and port, and only that one.
func TestMirrorTCP(t *testing.T) {
	targets := mas(addrTCP, addrQUIC, "/ip4/203.0.113.5/udp/4012/quic-v1", "/ip4/203.0.113.6/udp/4011/quic-v1")
	verdict := map[string]bool{addrTCP: false}
	mirrorTCP(verdict, targets)
	if v, ok := verdict[addrQUIC]; !ok || v {
		t.Errorf("the QUIC address on the TCP one's IP and port: %v, %v; want unreachable", v, ok)
	}
	if len(verdict) != 2 {
		t.Errorf("other ports or IPs got a verdict: %v", verdict)
	}
	verdict = map[string]bool{addrTCP: false, addrQUIC: true}
	mirrorTCP(verdict, targets)
	if !verdict[addrQUIC] {
		t.Error("a QUIC address's own verdict was overwritten")
	}
}

// Each address gets two colleagues when there are enough, and no
// colleague more than reachChecksPerServer addresses a round (AutoNAT v2
// servers answer 12 requests a minute from one peer).
func TestPlanChecks(t *testing.T) {
	ids := func(n int) []peer.ID {
		var out []peer.ID
		for i := range n {
			out = append(out, peer.ID(fmt.Sprint("server", i)))
		}
		return out
	}
	tests := []struct {
		addrs, servers int
		asked          []int
	}{
		{2, 2, []int{2, 2}},
		{2, 1, []int{1, 1}},
		{4, 2, []int{2, 2, 1, 1}}, // 6 requests at most: 3 each
		{4, 10, []int{2, 2, 2, 2}},
		{4, 1, []int{1, 1, 1, 0}},
	}
	for _, tt := range tests {
		work, asked := planChecks(tt.addrs, ids(tt.servers))
		if !slices.Equal(asked, tt.asked) {
			t.Errorf("%d addresses, %d servers: asked %v, want %v", tt.addrs, tt.servers, asked, tt.asked)
		}
		for s, todo := range work {
			if len(todo) > reachChecksPerServer {
				t.Errorf("%d addresses, %d servers: %s gets %d", tt.addrs, tt.servers, s, len(todo))
			}
		}
	}
}

func loopbackHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// askDialBack reads an AutoNAT v2 server's answer: it could dial the
// address (public), or could not (private). The server here allows
// loopback addresses, as a test server only may.
func TestAskDialBack(t *testing.T) {
	server := loopbackHost(t)
	dialer, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.Close()
	an, err := autonatv2.New(dialer, autonatv2.AllowPrivateAddrs)
	if err != nil {
		t.Fatal(err)
	}
	if err := an.Start(server); err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	relay := loopbackHost(t)
	if err := relay.Connect(t.Context(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if r, err := askDialBack(t.Context(), relay, server.ID(), relay.Addrs()[0]); err != nil || r != network.ReachabilityPublic {
		t.Fatalf("the relay's own listening address: %v, %v; want public", r, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port))
	l.Close()
	if r, err := askDialBack(t.Context(), relay, server.ID(), closed); err != nil || r != network.ReachabilityPrivate {
		t.Fatalf("a closed port: %v, %v; want private", r, err)
	}
}

// A node drops a configured relay that stops relaying (it says so with an
// identify push), so that AutoRelay gives up its reservation there and uses
// another relay, instead of keeping it until its refresh fails an hour on.
func TestWatchRelaysDropsARelayThatStopsRelaying(t *testing.T) {
	relayHost := loopbackHost(t)
	svc, err := relayv2.New(relayHost)
	if err != nil {
		t.Fatal(err)
	}
	client := loopbackHost(t)
	info := peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}
	if err := client.Connect(t.Context(), info); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool { return speaksHop(client, relayHost.ID()) }) {
		t.Fatal("the client never learnt the relay relays")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Subscribed before the relay stops, so that its word is heard; an
	// interval far beyond the test: only that word counts.
	sub, err := client.EventBus().Subscribe(new(event.EvtPeerProtocolsUpdated))
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		watchRelaysWith(ctx, client, sub, []peer.AddrInfo{info}, time.Hour, slog.New(slog.DiscardHandler))
	})
	svc.Close()
	if !waitUntil(10*time.Second, func() bool {
		return client.Network().Connectedness(relayHost.ID()) != network.Connected
	}) {
		t.Fatal("the client still holds its connection to a relay that stopped relaying")
	}
	// A relay that does not relay is not dropped again once reconnected.
	if err := client.Connect(t.Context(), info); err != nil {
		t.Fatal(err)
	}
	if waitUntil(time.Second, func() bool {
		return client.Network().Connectedness(relayHost.ID()) != network.Connected
	}) {
		t.Fatal("the client dropped a relay that was not relaying to begin with")
	}
}

// A relay that stops answering (its machine went away: nothing resets the
// connection) is dropped within a few intervals: a ping that gets no answer
// in time is a failure, not a success (the old code never dropped it).
func TestWatchRelaysDropsASilentRelay(t *testing.T) {
	relayHost := loopbackHost(t)
	// It takes pings and never answers (and ends each stream once the
	// client gives up on it, so as not to hit the ping protocol's limit).
	relayHost.SetStreamHandler(ping.ID, func(s network.Stream) {
		io.Copy(io.Discard, s)
		s.Reset()
	})
	client := loopbackHost(t)
	info := peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}
	if err := client.Connect(t.Context(), info); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const interval = 200 * time.Millisecond
	wg.Go(func() { watchRelays(ctx, client, []peer.AddrInfo{info}, interval, slog.New(slog.DiscardHandler)) })
	if !waitUntil(25*interval, func() bool {
		return client.Network().Connectedness(relayHost.ID()) != network.Connected
	}) {
		t.Fatalf("the client still holds its connection to a relay that did not answer pings for %v", 25*interval)
	}
}

func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
