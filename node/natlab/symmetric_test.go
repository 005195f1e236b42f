//go:build natlab

package natlab

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

// Scenario 2 (issue #4, RELIABILITY F8): both peers behind symmetric NATs
// (MASQUERADE --random-fully), TCP and QUIC. Hole punching cannot work, so
// the peers stay on the relay: kith status says "relayed" via the relay, and
// direct messages are delivered over it both ways; so is a file (issue #5),
// through the relay's limits for colleagues, and the transfer says it went
// relayed via that relay.

// noDirectWindow is how long the test watches for a direct path that must
// not appear: DCUtR gives up after three attempts a few seconds apart.
const noDirectWindow = 15 * time.Second

func TestSymmetricNATsStayRelayed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Symmetric}, HostSpec{Name: "b", NAT: Symmetric})
	w.startRelay("relay", w.colleagues("a", "b")...)
	inbox := autoAccept(t, w.lab.Host("b"))
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
	sendRelayed(t, w, inbox)
}

// autoAccept makes h's node take offers from trusted contacts into a fresh
// folder, which it returns.
func autoAccept(t *testing.T, h *Host) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(h.Home, "config.toml")
	cfg, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(cfg), "[files]\n") {
		t.Fatalf("%s: no [files] section in the config kith init wrote (%v)", h.Name, err)
	}
	text := strings.Replace(string(cfg), "[files]\n", fmt.Sprintf("[files]\nauto_accept = \"trusted\"\ndownload_dir = %q\n", dir), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sendRelayed sends a 24 MiB file from a to b, who trusts a, and checks it
// arrives whole, over the relay.
func sendRelayed(t *testing.T, w *world, inbox string) {
	t.Helper()
	start := time.Now()
	last, err := sendFile(t, w, "a", "b", inbox, 24<<20)
	if err != nil {
		t.Fatal(err)
	}
	if last.Path != "relayed" || last.Relay != w.relayID {
		t.Fatalf("a's transfer ended %+v; want relayed via %s", last, w.relayID)
	}
	took := time.Since(start)
	t.Logf("natlab: 24 MiB relayed a → b in %v (%.1f MB/s), verified", took.Round(time.Millisecond), float64(24<<20)/took.Seconds()/1e6)
}

// sendFile sends size random bytes from one host to another, which trusts
// it and auto-accepts into inbox; it checks the copy and returns how the
// sender's `kith send --json` saw the transfer end.
func sendFile(t *testing.T, w *world, from, to, inbox string, size int) (node.TransferInfo, error) {
	var last node.TransferInfo
	w.lab.MustRun(w.lab.Host(to), "contacts", "trust", from)
	src := filepath.Join(t.TempDir(), "plan.bin")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return last, err
	}
	r := w.lab.Run(w.lab.Host(from), "send", src, "--to", to, "--json")
	out := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if r.Code != 0 {
		return last, fmt.Errorf("kith send: exit %d: %s", r.Code, r.Stderr)
	}
	if err := json.Unmarshal([]byte(out[len(out)-1]), &last); err != nil || last.State != "done" {
		return last, fmt.Errorf("last line of kith send --json: %q (%v)", out[len(out)-1], err)
	}
	got, err := os.ReadFile(filepath.Join(inbox, "plan.bin"))
	if err != nil || !bytes.Equal(got, data) {
		return last, fmt.Errorf("%s's copy: %d bytes (%v), want the %d sent", to, len(got), err, len(data))
	}
	return last, nil
}
