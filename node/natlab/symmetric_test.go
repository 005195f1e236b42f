//go:build natlab

package natlab

import (
	"strings"
	"testing"
	"time"
)

// Scenario 2 (issue #4, RELIABILITY F8): both peers behind symmetric NATs
// (MASQUERADE --random-fully), TCP and QUIC. Hole punching cannot work, so
// the peers stay on the relay: kith status says "relayed" via the relay, and
// direct messages are delivered over it both ways.

// noDirectWindow is how long the test watches for a direct path that must
// not appear: DCUtR gives up after three attempts a few seconds apart.
const noDirectWindow = 15 * time.Second

func TestSymmetricNATsStayRelayed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Symmetric}, HostSpec{Name: "b", NAT: Symmetric})
	w.startRelay("relay", w.colleagues("a", "b")...)
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	w.mustReserve(reserveLimit, "a", "b")

	a, b := w.lab.Host("a"), w.lab.Host("b")
	start := time.Now()
	if out := strings.TrimSpace(w.lab.MustRun(a, "msg", "b", "hello b, via the relay")); out != "delivered" {
		t.Fatalf("a's message to b: %q, want delivered", out)
	}
	t.Logf("a → b delivered %v after kith msg started", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if out := strings.TrimSpace(w.lab.MustRun(b, "msg", "a", "hello a, via the relay")); out != "delivered" {
		t.Fatalf("b's message to a: %q, want delivered", out)
	}
	t.Logf("b → a delivered %v after kith msg started", time.Since(start).Round(time.Millisecond))

	// Watch both sides: the connection must stay relayed, via our relay.
	var last string
	watched, direct := waitFor(noDirectWindow, 500*time.Millisecond, func() bool {
		for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
			p := w.path(pair[0], pair[1])
			last = pair[0] + " sees " + pair[1] + ": " + p.Path + " " + p.Addr
			if p.Path == "direct" {
				return true
			}
		}
		return false
	})
	if direct {
		t.Fatalf("a direct path appeared through symmetric NATs after %v: %s", watched, last)
	}
	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
		p := w.path(pair[0], pair[1])
		if p.Path != "relayed" || p.Relay != w.relayID {
			t.Fatalf("%s's path to %s: %+v, want relayed via %s", pair[0], pair[1], p, w.relayID)
		}
	}
	for _, h := range []*Host{a, b} {
		if ms := w.inbox(h.Name); len(ms) != 2 {
			t.Fatalf("%s's conversation: %+v, want the 2 messages", h.Name, ms)
		}
	}
	t.Logf("natlab: symmetric relayed both ways, no direct path in %v (%s)", noDirectWindow, last)
}
