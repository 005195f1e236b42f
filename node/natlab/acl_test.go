//go:build natlab

package natlab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Scenario 5 (issue #4, RELIABILITY B11): a closed relay that allows one
// peer. The allowed peer reserves a slot; an unknown peer asking for one is
// refused, and the relay's metrics count the refusal.
//
// It is written against the relay's ACL flags: --allow PEERID (repeatable;
// the relay's contacts are allowed too), --closed (peers not allowed get
// nothing) and --metrics HOST:PORT serving Prometheus text at /metrics with
// kith_relay_reservations_refused_total{reason="not_allowed"}.

// refusedWindow is how long the unknown peer is watched, once it is looking
// for a relay, for a reservation it must not get.
const refusedWindow = 10 * time.Second

func TestRelayRefusesUnknownPeer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "allowed", NAT: Cone}, HostSpec{Name: "stranger", NAT: Cone})
	requireRelayACL(t, w.lab)
	allowed := strings.TrimSpace(w.lab.MustRun(w.lab.Host("allowed"), "init"))
	relayHost := w.lab.Host("relay")
	metrics := fmt.Sprintf("%s:9100", relayHost.Addr)
	w.startRelay("relay", "--closed", "--allow", allowed, "--metrics", metrics)
	w.startPeer("allowed")
	w.startPeer("stranger")
	if w.ids["allowed"] != allowed {
		t.Fatalf("kith init said %s, the daemon runs as %s", allowed, w.ids["allowed"])
	}

	w.mustReserve(reserveLimit, "allowed")
	// The stranger looks for a relay once AutoNAT calls it private; from
	// then on it must get no reservation. (A closed relay may shut it out
	// so early that it never learns it is private; then the watch below
	// simply starts after this wait.)
	if d, ok := waitFor(reserveLimit, pollEvery, func() bool {
		st, ok := w.status("stranger")
		return ok && st.Reachability == "private"
	}); !ok {
		t.Logf("the stranger did not find it is behind NAT within %v", d)
	}
	if d, got := waitFor(refusedWindow, pollEvery, func() bool {
		st, ok := w.status("stranger")
		return ok && slices.Contains(st.Relays, w.relayID)
	}); got {
		t.Fatalf("the closed relay gave the unknown peer a reservation after %v", d)
	}

	var refused float64
	if _, ok := waitFor(10*time.Second, pollEvery, func() bool {
		text, err := fetch(t, relayHost.NS, "http://"+metrics+"/metrics")
		if err != nil {
			t.Logf("metrics: %v", err)
			return false
		}
		refused, _ = metricValue(text, "kith_relay_reservations_refused_total", `reason="not_allowed"`)
		return refused >= 1
	}); !ok {
		t.Fatalf("kith_relay_reservations_refused_total{reason=\"not_allowed\"} is %v, want at least 1", refused)
	}
	t.Logf("natlab: closed relay: allowed peer reserved, unknown peer refused (%v refusals counted)", refused)
}

// requireRelayACL skips the test when this kith has no relay ACL yet.
func requireRelayACL(t *testing.T, lab *Lab) {
	t.Helper()
	help := lab.MustRun(lab.Host("relay"), "relay", "--help")
	if !strings.Contains(help, "--announce") {
		t.Fatalf("kith relay --help does not look like kith relay's help:\n%s", help)
	}
	if !strings.Contains(help, "--allow") {
		t.Skip("relay ACL flags not implemented yet")
	}
}
