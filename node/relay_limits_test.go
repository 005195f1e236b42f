package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// openFrom opens n inbound connections from ip in rm, each then moved out
// of the transient scope to a peer of its own, as a secured connection is,
// and returns their scopes; it stops at the first refusal and returns it.
func openFrom(rm network.ResourceManager, ip string, n int) ([]network.ConnManagementScope, error) {
	var scopes []network.ConnManagementScope
	proto := "ip4"
	if strings.Contains(ip, ":") {
		proto = "ip6"
	}
	for i := range n {
		s, err := rm.OpenConnection(network.DirInbound, true, ma.StringCast(fmt.Sprintf("/%s/%s/tcp/%d", proto, ip, 1000+i)))
		if err != nil {
			return scopes, fmt.Errorf("connection %d from %s: %w", i+1, ip, err)
		}
		scopes = append(scopes, s)
		if err := s.SetPeer(peer.ID(fmt.Sprintf("peer %s %d", ip, i))); err != nil {
			return scopes, err
		}
	}
	return scopes, nil
}

func done(scopes []network.ConnManagementScope) {
	for _, s := range scopes {
		s.Done()
	}
}

func relayRM(t *testing.T, edit func(*RelayConfig)) network.ResourceManager {
	t.Helper()
	cfg := Config{Relay: RelayConfig{Enabled: true}}
	if edit != nil {
		edit(&cfg.Relay)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	opts, err := relayConnLimits(cfg.withDefaults().Relay)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := newResourceManager(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return rm
}

// A daemon keeps go-libp2p's limit: the ninth connection from one address
// is refused. That is what an office NAT meets on a relay without kith's
// limits.
func TestDaemonKeepsEightConnsPerIP(t *testing.T) {
	rm, err := newResourceManager(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	scopes, err := openFrom(rm, "203.0.113.7", 9)
	defer done(scopes)
	if err == nil || len(scopes) != 8 {
		t.Fatalf("a daemon admitted %d connections from one address (err %v), want go-libp2p's 8", len(scopes), err)
	}
}

// A relay admits conns_per_ip (default 64) connections at once from one
// address, so 21 colleagues behind one office NAT, each with a connection
// and a reconnect in flight, fit; the next one is refused, and another
// address is counted on its own.
func TestRelayAdmitsAnOfficeBehindOneAddress(t *testing.T) {
	rm := relayRM(t, nil)
	office, err := openFrom(rm, "203.0.113.7", 64)
	defer done(office)
	if err != nil {
		t.Fatalf("relay refused an office's connections: %v", err)
	}
	if more, err := openFrom(rm, "203.0.113.7", 1); err == nil {
		done(more)
		t.Fatal("the relay admitted a 65th connection from one address")
	}
	other, err := openFrom(rm, "203.0.113.8", 8)
	defer done(other)
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	v6, err := openFrom(rm, "2001:db8:1:2::7", 64)
	defer done(v6)
	if err != nil {
		t.Fatalf("an IPv6 /56: %v", err)
	}
	// Loopback stays exempt, as in go-libp2p.
	lo, err := openFrom(rm, "127.0.0.1", 100)
	defer done(lo)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
}

// New connections from one address are paced: a burst of twice the limit
// (an office reconnecting at once after an outage, twice over), then the
// rate limiter refuses until it refills.
func TestRelayPacesNewConnsPerIP(t *testing.T) {
	rm := relayRM(t, func(r *RelayConfig) { r.ConnsPerIP = 16 })
	for round := range 2 {
		scopes, err := openFrom(rm, "203.0.113.7", 16)
		done(scopes)
		if err != nil {
			t.Fatalf("round %d of 16 reconnects: %v", round+1, err)
		}
	}
	scopes, err := openFrom(rm, "203.0.113.7", 1)
	done(scopes)
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("the 33rd new connection in a burst from one address: %v, want refused by the rate limit", err)
	}
}

// relay.prefix_limits count a whole network's connections together, in
// place of the per-address limit.
func TestRelayPrefixLimits(t *testing.T) {
	rm := relayRM(t, func(r *RelayConfig) {
		r.ConnsPerIP = 2
		r.PrefixLimits = map[string]int{"198.51.100.0/30": 5}
	})
	a, err := openFrom(rm, "198.51.100.1", 3)
	defer done(a)
	if err != nil {
		t.Fatalf("inside the prefix, above conns_per_ip: %v", err)
	}
	b, err := openFrom(rm, "198.51.100.2", 2)
	defer done(b)
	if err != nil {
		t.Fatalf("inside the prefix: %v", err)
	}
	if c, err := openFrom(rm, "198.51.100.3", 1); err == nil {
		done(c)
		t.Fatal("the prefix admitted a 6th connection, want its limit of 5")
	}
	if d, err := openFrom(rm, "203.0.113.9", 3); err == nil || len(d) != 2 {
		done(d)
		t.Fatalf("outside the prefix: admitted %d (err %v), want conns_per_ip = 2", len(d), err)
	}
}

func TestRelayPrefixLimitsConfig(t *testing.T) {
	home := writeConfig(t, "[relay]\nconns_per_ip = 100\nprefix_limits = { \"203.0.113.0/28\" = 512 }\n")
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Relay.ConnsPerIP != 100 || cfg.Relay.PrefixLimits["203.0.113.0/28"] != 512 {
		t.Fatalf("loaded %+v", cfg.Relay)
	}
	for _, bad := range []string{
		"prefix_limits = { \"office\" = 5 }",
		"prefix_limits = { \"203.0.113.0/28\" = 0 }",
		"conns_per_ip = -1",
		"reachability_check = \"-5s\"",
	} {
		if _, err := LoadConfig(writeConfig(t, "[relay]\n"+bad+"\n")); err == nil {
			t.Errorf("%s: loaded without error", bad)
		}
	}
	if d := (Config{}).withDefaults().Relay; d.ConnsPerIP != 64 {
		t.Errorf("default conns_per_ip %d, want 64", d.ConnsPerIP)
	}
}
