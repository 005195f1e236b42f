//go:build natlab

package natlab

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scenario 1 (issue #4): two peers, each behind its own cone NAT, know each
// other by peer ID alone. They meet through the relay (found in the DHT,
// connected over the relay, as the relay's metrics show) and DCUtR upgrades
// the connection to a direct one, over which a file then goes. Ten rounds
// per transport, each in a fresh lab.

const (
	coneRounds   = 10
	coneMinOK    = 9
	reserveLimit = 45 * time.Second // AutoNAT v1 needs ~17 s to call a NATed peer private
	directLimit  = 60 * time.Second
	// directPoll is finer than pollEvery: hole punching takes milliseconds
	// (TCP) to a few hundred (QUIC), and the median should show it.
	directPoll = 100 * time.Millisecond
)

func TestConeNATsGoDirect(t *testing.T) {
	Skip(t)
	t.Parallel()
	for _, tr := range []transport{tcpOnly, quicOnly} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var results []coneResult
			t.Cleanup(func() { reportCone(t, tr, results) })
			for i := range coneRounds {
				t.Run(fmt.Sprintf("round%02d", i+1), func(t *testing.T) {
					t.Parallel()
					r := coneRound(t, tr)
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				})
			}
		})
	}
}

// coneResult is one round: whether the path became direct, and how long
// after `kith ping` started.
type coneResult struct {
	direct bool
	took   time.Duration
	why    string
}

func coneRound(t *testing.T, tr transport) coneResult {
	w := newWorld(t, tr, HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone})
	relay := w.lab.Host("relay")
	metrics := relay.Addr + ":9100"
	w.startRelay("relay", append(w.colleagues("a", "b"), "--metrics", metrics)...)
	inbox := autoAccept(t, w.lab.Host("a"))
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	fail := func(format string, args ...any) coneResult {
		why := fmt.Sprintf(format, args...)
		w.lab.Dump(why)
		return coneResult{why: why}
	}
	for _, n := range []string{"a", "b"} {
		if d, ok := w.waitReserved(n, reserveLimit); !ok {
			return fail("%s reserved no slot on the relay in %v", n, d)
		}
	}
	b := w.lab.Host("b")
	start := time.Now()
	ping := w.lab.Run(b, "ping", w.ids["a"], "--count", "1", "--json")
	if ping.Code != 0 {
		return fail("kith ping a: exit %d: %s", ping.Code, ping.Stderr)
	}
	var last string
	took, ok := waitFor(directLimit, directPoll, func() bool {
		p := w.path("b", "a")
		last = fmt.Sprintf("%s %s", p.Path, p.Addr)
		return p.Path == "direct"
	})
	if !ok {
		return fail("no direct path after %v (last: %s; ping said %s)", took, last, strings.TrimSpace(ping.Stdout))
	}
	took = time.Since(start)
	// They met through the relay: it carried a connection between them.
	text, err := fetch(t, relay.NS, "http://"+metrics+"/metrics")
	if err != nil {
		return fail("relay metrics: %v", err)
	}
	if n, _ := metricValue(text, "libp2p_relaysvc_connections_total", `type="opened"`); n < 1 {
		return fail("went direct, but the relay carried no connection (%v): they did not meet through it", n)
	}
	t.Logf("direct after %v: %s (ping: %s)", took.Round(time.Millisecond), last, strings.TrimSpace(ping.Stdout))
	if want := "/" + map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr.name]; !strings.Contains(last, want) {
		return fail("direct path %s is not over %s", last, tr.name)
	}
	// A file then goes over the direct path (issue #5).
	sent, err := sendFile(t, w, "b", "a", inbox, 4<<20)
	if err != nil || sent.Path != "direct" {
		return fail("file b → a: %+v (%v), want done over the direct path", sent, err)
	}
	return coneResult{direct: true, took: took}
}

// reportCone logs the success rate and median time to direct in one
// greppable line and fails the test below coneMinOK of coneRounds.
func reportCone(t *testing.T, tr transport, results []coneResult) {
	var times []time.Duration
	for _, r := range results {
		if r.direct {
			times = append(times, r.took)
		} else {
			t.Logf("natlab: %s round failed: %s", tr.name, r.why)
		}
	}
	slices.Sort(times)
	median := time.Duration(0)
	if len(times) > 0 {
		median = times[len(times)/2]
		if len(times)%2 == 0 {
			median = (times[len(times)/2-1] + times[len(times)/2]) / 2
		}
	}
	t.Logf("natlab: %s direct %d/%d median %v (time from kith ping to a direct path in kith status)",
		tr.name, len(times), len(results), median.Round(time.Millisecond))
	if len(results) < coneRounds {
		t.Errorf("natlab: only %d of %d %s rounds finished", len(results), coneRounds, tr.name)
	}
	if len(times) < coneMinOK {
		t.Errorf("natlab: %s went direct in %d of %d rounds, want at least %d", tr.name, len(times), len(results), coneMinOK)
	}
}
