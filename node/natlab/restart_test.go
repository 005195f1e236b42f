//go:build natlab

package natlab

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Scenario 4 (issue #4, RELIABILITY F2): the relay is killed (SIGKILL, as a
// crash) and started again at once with the same home, identity and listen
// addresses. The peers behind NAT reserve on it again, as the relay's own
// metrics show, and reach each other through it, within 30 s.

const reReserveLimit = 30 * time.Second

func TestRelayRestartReReserve(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone})
	relayHost := w.lab.Host("relay")
	metrics := fmt.Sprintf("%s:9100", relayHost.Addr)
	allow := w.colleagues("a", "b")
	relay := w.startRelay("relay", append(allow, "--metrics", metrics)...)
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	w.mustReserve(reserveLimit, "a", "b")
	addrs := w.relayAddrs

	relay.Kill()
	killed := time.Now()
	w.startRelay("relay", append(allow, "--metrics", metrics)...)
	restarted := time.Now()
	if !slices.Equal(w.relayAddrs, addrs) {
		t.Fatalf("the restarted relay prints %v, want the same addresses %v", w.relayAddrs, addrs)
	}

	// The restarted relay starts from no reservation: count the new ones.
	var opened float64
	took, ok := waitFor(reReserveLimit, pollEvery, func() bool {
		text, err := fetch(t, relayHost.NS, "http://"+metrics+"/metrics")
		if err != nil {
			return false
		}
		opened, _ = metricValue(text, "libp2p_relaysvc_reservations_total", `type="opened"`)
		return opened >= 2
	})
	if !ok {
		w.lab.Dump("no re-reservation")
		t.Fatalf("the restarted relay saw %v reservations in %v, want both peers' within %v", opened, took, reReserveLimit)
	}
	reserved := time.Since(restarted)
	for _, n := range []string{"a", "b"} {
		if st, _ := w.status(n); !slices.Contains(st.Relays, w.relayID) {
			t.Fatalf("%s does not list the relay after re-reserving: %+v", n, st)
		}
	}
	b := w.lab.Host("b")
	if r := w.lab.Run(b, "ping", w.ids["a"], "--count", "1", "--json"); r.Code != 0 {
		t.Fatalf("b cannot reach a after the relay restart: exit %d: %s", r.Code, r.Stderr)
	}
	reach := time.Since(restarted)
	t.Logf("natlab: relay restart: both peers re-reserved %v and reachable %v after the restart (%v after the kill)",
		reserved.Round(time.Millisecond), reach.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if reach > reReserveLimit {
		t.Fatalf("peers reachable again %v after the relay restart, want at most %v", reach, reReserveLimit)
	}
}
