//go:build natlab

package natlab

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Scenario 3 (issue #4, RELIABILITY F13): the relay itself sits behind a
// NAT router that forwards 4011/tcp and 4011/udp to it (DNAT), and announces
// the router's public address. Peers behind other NATs reserve a slot on it
// and exchange direct messages.

func TestRelayBehindPortForward(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay", NAT: Cone, Forward: []int{RelayPort}},
		HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone})
	pub := w.lab.Host("relay").PublicAddr
	w.startRelay("relay", append(w.colleagues("a", "b"),
		"--announce", fmt.Sprintf("/ip4/%s/tcp/%d", pub, RelayPort),
		"--announce", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", pub, RelayPort))...)
	for _, a := range w.relayAddrs {
		if !strings.HasPrefix(a, "/ip4/"+pub+"/") {
			t.Fatalf("the relay printed %s, want its announced address %s", a, pub)
		}
	}
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	start := time.Now()
	w.mustReserve(reserveLimit, "a", "b")
	t.Logf("both peers reserved on the relay behind NAT %v after they started waiting", time.Since(start).Round(time.Millisecond))

	a, b := w.lab.Host("a"), w.lab.Host("b")
	if out := strings.TrimSpace(w.lab.MustRun(a, "msg", "b", "through the forwarded port")); out != "delivered" {
		t.Fatalf("a's message to b: %q, want delivered", out)
	}
	if out := strings.TrimSpace(w.lab.MustRun(b, "msg", "a", "and back")); out != "delivered" {
		t.Fatalf("b's message to a: %q, want delivered", out)
	}
	p := w.path("a", "b")
	t.Logf("natlab: relay behind NAT (%s forwarded): both reserved, DMs delivered both ways; a↔b path now %s %s",
		pub, p.Path, p.Addr)
}
