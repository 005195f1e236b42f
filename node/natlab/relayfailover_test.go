//go:build natlab

package natlab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// RELIABILITY F13, the forward removed: our relay sits behind a NAT router
// that forwards 4011/tcp and 4011/udp to it, and announces the router's
// public address; a second relay is on the public segment. Two colleagues
// behind symmetric NATs (so every path between them is relayed) know both
// relays and reserve on both. Then the port-forward is taken off the
// router. The relay behind it must notice that nobody outside can reach it
// any more, say so (status relaying false, a "not reachable" warning) and
// stop relaying; its clients must drop their reservation there and go on
// through the other relay, within 60 s of the forward's removal.

// failoverLimit is RELIABILITY F13's bound, from the forward's removal to
// both clients holding reservations on the other relay only.
const failoverLimit = 60 * time.Second

func TestRelayBehindNATLosesForward(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay", NAT: Cone, Forward: []int{RelayPort}},
		HostSpec{Name: "relay2"},
		HostSpec{Name: "a", NAT: Symmetric}, HostSpec{Name: "b", NAT: Symmetric})
	allow := w.colleagues("a", "b")
	behind := w.lab.Host("relay")
	pub := behind.PublicAddr
	relay1 := w.startRelay("relay", append(slices.Clone(allow),
		"--announce", fmt.Sprintf("/ip4/%s/tcp/%d", pub, RelayPort),
		"--announce", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", pub, RelayPort))...)
	r1Addrs, r1 := w.relayAddrs, w.relayID
	w.startRelay("relay2", allow...)
	r2Addrs, r2 := w.relayAddrs, w.relayID
	// The colleagues know both relays (--bootstrap and --relay with both).
	w.relayAddrs = append(slices.Clone(r1Addrs), r2Addrs...)
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	for _, n := range []string{"a", "b"} {
		if d, ok := w.waitRelays(n, reserveLimit, []string{r1, r2}, nil); !ok {
			st, _ := w.status(n)
			t.Fatalf("%s did not reserve on both relays within %v: %+v", n, d, st)
		}
	}
	if st, ok := w.lab.Status(behind); !ok || st.Relaying == nil || !*st.Relaying {
		t.Fatalf("the relay behind the forward does not relay: %+v", st)
	}
	b := w.lab.Host("b")
	if out := strings.TrimSpace(w.lab.MustRun(b, "msg", "a", "before")); out != "delivered" {
		t.Fatalf("b's message to a before the forward is removed: %q", out)
	}

	if err := w.lab.RemoveForward(behind, RelayPort); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	noticed, ok := waitFor(failoverLimit, pollEvery, func() bool {
		st, ok := w.lab.Status(behind)
		return ok && st.Relaying != nil && !*st.Relaying
	})
	if !ok {
		w.lab.Dump("the relay never noticed")
		t.Fatalf("the relay behind NAT still says it relays %v after its forward was removed", noticed)
	}
	said := logLine(relay1.Logs(), "not reachable")
	if said == "" {
		t.Fatalf("the relay stopped relaying without saying it is not reachable:\n%s", lastLines(relay1.Logs(), 30))
	}
	t.Logf("the relay said: %s", said)
	for _, n := range []string{"a", "b"} {
		if _, ok := w.waitRelays(n, failoverLimit-time.Since(removed), []string{r2}, []string{r1}); !ok {
			st, _ := w.status(n)
			w.lab.Dump("no failover")
			t.Fatalf("%s still holds a reservation on the unreachable relay, or none on the other, %v after the forward was removed: %+v",
				n, time.Since(removed).Round(time.Millisecond), st)
		}
	}
	failedOver := time.Since(removed)
	if out := strings.TrimSpace(w.lab.MustRun(b, "msg", "a", "after")); out != "delivered" {
		t.Fatalf("b's message to a after the failover: %q", out)
	}
	p := w.path("b", "a")
	if p.Path != "relayed" || p.Relay != r2 {
		t.Fatalf("b reaches a by %+v after the failover, want relayed via the other relay %s", p, r2)
	}
	t.Logf("natlab: F13 forward removed: the relay behind NAT stopped relaying %v after, both clients on the other relay only %v after; b → a delivered via it",
		noticed.Round(time.Millisecond), failedOver.Round(time.Millisecond))
}

// waitRelays waits until name's status lists every relay of want and none
// of gone, and returns how long that took.
func (w *world) waitRelays(name string, timeout time.Duration, want, gone []string) (time.Duration, bool) {
	return waitFor(timeout, pollEvery, func() bool {
		st, ok := w.status(name)
		if !ok {
			return false
		}
		for _, r := range want {
			if !slices.Contains(st.Relays, r) {
				return false
			}
		}
		for _, r := range gone {
			if slices.Contains(st.Relays, r) {
				return false
			}
		}
		return true
	})
}

// logLine is the first line of logs that contains s, or "".
func logLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
