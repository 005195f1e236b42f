package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

// Two daemons that know only a third (a relay used as bootstrap) find each
// other through the DHT, and `kith ping` between them succeeds both ways.
func TestCLIPingThroughBootstrap(t *testing.T) {
	relay := startDaemon(t, newHome(t), "relay")
	boot := relay.line(t)
	if !strings.HasPrefix(boot, "/ip4/127.0.0.1/") || !strings.Contains(boot, "/p2p/12D3KooW") {
		t.Fatalf("relay printed %q, want a multiaddr\n%s", boot, relay.logs())
	}
	homeA, homeB := newHome(t), newHome(t)
	startDaemon(t, homeA, "daemon", "--bootstrap", boot)
	startDaemon(t, homeB, "daemon", "--bootstrap", boot)
	idA := decodeJSON[node.Identity](t, mustRun(t, homeA, "id", "--json"))
	idB := decodeJSON[node.Identity](t, mustRun(t, homeB, "id", "--json"))

	for _, tc := range []struct{ from, to string }{{homeA, idB.PeerID}, {homeB, idA.PeerID}} {
		out := mustRun(t, tc.from, "ping", tc.to, "--count", "2", "--interval", "0", "--json")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("want 2 ping lines, got %q", out)
		}
		for i, l := range lines {
			r := decodeJSON[node.PingResult](t, l)
			if r.Seq != i+1 || r.PeerID != tc.to || r.Path != node.PathDirect || r.RTTMs <= 0 {
				t.Errorf("ping line %d: %+v", i, r)
			}
		}
	}
	// Human output names the path too.
	if out := mustRun(t, homeA, "ping", idB.PeerID, "-c", "1", "-i", "0"); !strings.Contains(out, "path=direct") {
		t.Errorf("human ping output: %q", out)
	}
}

func TestCLIIDStatusAndSocket(t *testing.T) {
	home := newHome(t)
	startDaemon(t, home, "daemon")
	st, err := os.Stat(filepath.Join(home, "kith.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket mode %v, want a 0600 socket", st.Mode())
	}

	out := mustRun(t, home, "id", "--json")
	if got := keys(t, out); !slices.Equal(got, []string{"addrs", "peer_id", "ticket"}) {
		t.Fatalf("id --json keys %v", got)
	}
	id := decodeJSON[node.Identity](t, out)
	if !strings.HasPrefix(id.PeerID, "12D3KooW") || len(id.Addrs) == 0 || !strings.HasPrefix(id.Ticket, "kith1") {
		t.Fatalf("id: %+v", id)
	}

	out = mustRun(t, home, "status", "--json")
	want := []string{"addrs", "dht_peers", "peer_id", "peers", "reachability", "relays"}
	if got := keys(t, out); !slices.Equal(got, want) {
		t.Fatalf("status --json keys %v, want %v", got, want)
	}
	s := decodeJSON[node.Status](t, out)
	if s.PeerID != id.PeerID || s.Reachability == "" || len(s.Addrs) == 0 {
		t.Fatalf("status: %+v", s)
	}
	// The daemon's own ID, in human form too.
	if out := mustRun(t, home, "status"); !strings.Contains(out, id.PeerID) || !strings.Contains(out, "reachability:") {
		t.Fatalf("status output: %s", out)
	}
}

// F10 through the CLI: `kith status` says whether the daemon is in the DHT;
// with its only bootstrap node down, that it is retrying, how often it
// failed and when it tries next; and connected again once the bootstrap node
// is back on the same address.
func TestCLIStatusBootstrap(t *testing.T) {
	relayHome := newHome(t)
	relay := startDaemon(t, relayHome, "relay")
	boot := relay.line(t)
	home := newHome(t)
	startDaemon(t, home, "daemon", "--bootstrap", boot)
	bootstrapOf := func() (node.BootstrapStatus, []string) {
		out := mustRun(t, home, "status", "--json")
		raw := decodeJSON[struct{ Bootstrap map[string]json.RawMessage }](t, out)
		s := decodeJSON[node.Status](t, out)
		if s.Bootstrap == nil {
			t.Fatalf("status --json has no bootstrap: %s", out)
		}
		return *s.Bootstrap, slices.Sorted(maps.Keys(raw.Bootstrap))
	}
	waitState := func(state string, what string) node.BootstrapStatus {
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if b, _ := bootstrapOf(); b.State == state {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status not %q within 3 minutes", what, state)
			}
		}
	}
	if b, keys := bootstrapOf(); b.State != node.BootstrapConnected || !slices.Equal(keys, []string{"failures", "state"}) {
		t.Fatalf("with the bootstrap node up: %+v, keys %v", b, keys)
	}

	relay.stop(t)
	down := time.Now()
	waitState(node.BootstrapRetrying, "bootstrap node stopped")
	var b node.BootstrapStatus
	for deadline := time.Now().Add(time.Minute); b.Failures == 0; time.Sleep(200 * time.Millisecond) {
		if b, _ = bootstrapOf(); time.Now().After(deadline) {
			t.Fatalf("no failed bootstrap round counted within a minute: %+v", b)
		}
	}
	failedAfter := time.Since(down)
	if _, keys := bootstrapOf(); !slices.Equal(keys, []string{"failures", "last_error", "next_retry", "state"}) {
		t.Fatalf("retrying: bootstrap keys %v", keys)
	}
	if out := mustRun(t, home, "status"); !strings.Contains(out, "bootstrap:    retrying: ") || !strings.Contains(out, "failed rounds, next in ") {
		t.Fatalf("status output while retrying: %s", out)
	}

	// The bootstrap node comes back on the address the daemon was given.
	listen, _, _ := strings.Cut(boot, "/p2p/")
	t.Logf("first failed round %s after the bootstrap node stopped: %+v", failedAfter.Round(time.Millisecond), b)
	back := time.Now()
	startDaemon(t, relayHome, "relay", "--listen", listen)
	waitState(node.BootstrapConnected, "bootstrap node back")
	t.Logf("connected again %s after the bootstrap node came back", time.Since(back).Round(time.Millisecond))
	if out := mustRun(t, home, "status"); !strings.Contains(out, "bootstrap:    connected\n") {
		t.Fatalf("status output once back: %s", out)
	}
}

// A status of a peer connected to us shows its path and RTT.
func TestCLIStatusShowsPeers(t *testing.T) {
	homeA, homeB := newHome(t), newHome(t)
	startDaemon(t, homeA, "daemon")
	startDaemon(t, homeB, "daemon")
	idB := decodeJSON[node.Identity](t, mustRun(t, homeB, "id", "--json"))
	mustRun(t, homeA, "ping", idB.Ticket, "-c", "1", "-i", "0")
	out := mustRun(t, homeA, "status", "--json")
	raw := decodeJSON[struct{ Peers []map[string]json.RawMessage }](t, out)
	if len(raw.Peers) == 0 {
		t.Fatalf("no peers in %s", out)
	}
	got := slices.Sorted(maps.Keys(raw.Peers[0]))
	if !slices.Equal(got, []string{"addr", "name", "path", "peer_id", "rtt_ms"}) {
		t.Fatalf("peer keys %v", got)
	}
	s := decodeJSON[node.Status](t, out)
	i := slices.IndexFunc(s.Peers, func(p node.PeerStatus) bool { return p.PeerID == idB.PeerID })
	if i < 0 || s.Peers[i].Path != node.PathDirect || s.Peers[i].Addr == "" {
		t.Fatalf("status peers: %+v", s.Peers)
	}
}

func TestCLISecondDaemonRefused(t *testing.T) {
	home := newHome(t)
	startDaemon(t, home, "daemon")
	r := run(t, home, append([]string{"daemon"}, loopbackFlags...)...)
	if r.code != exitHomeInUse {
		t.Fatalf("second daemon: exit %d, want %d\n%s", r.code, exitHomeInUse, r.stderr)
	}
	if !strings.Contains(r.stderr, "another kith node is running for this home") {
		t.Fatalf("second daemon's message: %q", r.stderr)
	}
	// The first is unharmed.
	mustRun(t, home, "status")
}

// kill -9 leaves a stale socket; a restart on the same home replaces it and
// keeps the identity.
func TestCLIKill9ThenRestart(t *testing.T) {
	home := newHome(t)
	d := startDaemon(t, home, "daemon")
	before := decodeJSON[node.Identity](t, mustRun(t, home, "id", "--json"))
	d.kill()
	if _, err := os.Stat(filepath.Join(home, "kith.sock")); err != nil {
		t.Fatalf("expected a stale socket after kill -9: %v", err)
	}
	startDaemon(t, home, "daemon")
	after := decodeJSON[node.Identity](t, mustRun(t, home, "id", "--json"))
	if after.PeerID != before.PeerID {
		t.Fatalf("identity changed across restart: %s then %s", before.PeerID, after.PeerID)
	}
}

// Without a daemon, commands run an embedded node for their duration.
func TestCLIEmbeddedNode(t *testing.T) {
	home := newHome(t)
	id := decodeJSON[node.Identity](t, mustRun(t, home, "id", "--json"))
	if id.PeerID == "" || len(id.Addrs) == 0 {
		t.Fatalf("embedded id: %+v", id)
	}
	s := decodeJSON[node.Status](t, mustRun(t, home, "status", "--json"))
	if s.PeerID != id.PeerID {
		t.Fatalf("embedded status peer %s, id %s", s.PeerID, id.PeerID)
	}
	// An embedded node can ping a daemon by ticket.
	other := newHome(t)
	startDaemon(t, other, "daemon")
	oid := decodeJSON[node.Identity](t, mustRun(t, other, "id", "--json"))
	if out := mustRun(t, home, "ping", oid.Ticket, "-c", "1", "-i", "0", "--json"); !strings.Contains(out, `"path":"direct"`) {
		t.Fatalf("embedded ping: %s", out)
	}
	if _, err := os.Stat(filepath.Join(home, "kith.sock")); !os.IsNotExist(err) {
		t.Fatalf("an embedded node must not leave a socket: %v", err)
	}
}

func TestCLIInitIsIdempotent(t *testing.T) {
	home := filepath.Join(t.TempDir(), "fresh")
	first := mustRun(t, home, "init")
	cfg1, err := os.ReadFile(filepath.Join(home, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	second := mustRun(t, home, "init")
	cfg2, _ := os.ReadFile(filepath.Join(home, "config.toml"))
	if first != second || !strings.HasPrefix(first, "12D3KooW") || !bytes.Equal(cfg1, cfg2) {
		t.Fatalf("init not idempotent: %q then %q", first, second)
	}
	st, _ := os.Stat(filepath.Join(home, "identity.key"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity.key mode %v", st.Mode())
	}
	os.Chmod(filepath.Join(home, "identity.key"), 0o644)
	r := run(t, home, "id")
	if r.code == 0 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("a world-readable key must be refused with the fix: exit %d %q", r.code, r.stderr)
	}
}

func TestCLIConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		args   []string
		want   []string
	}{
		{"unknown key", "[network]\nmdns = false\nlisten_addrs = []\n", []string{"daemon"},
			[]string{`unknown key "network.listen_addrs"`, "config.toml:3"}},
		{"malformed multiaddr in file", "[network]\nbootstrap = [\"/ip4/10.0.0.1/tcp/http\"]\n", []string{"daemon"},
			[]string{"network.bootstrap[0]", `"/ip4/10.0.0.1/tcp/http"`}},
		{"malformed multiaddr flag", "", []string{"daemon", "--bootstrap", "/ip4/1.2.3.4/tcp"},
			[]string{"network.bootstrap[0]", `"/ip4/1.2.3.4/tcp"`}},
		{"bad flag", "", []string{"ping", "--count", "many", "x"}, []string{"invalid argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			writeFile(t, filepath.Join(home, "config.toml"), tt.config)
			r := run(t, home, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not mention %q", r.stderr, w)
				}
			}
		})
	}
}

func TestCLIPingErrors(t *testing.T) {
	home := newHome(t)
	startDaemon(t, home, "daemon")
	r := run(t, home, "ping", "not-a-peer")
	if r.code != exitUsage || !strings.Contains(r.stderr, "not a contact name, peer ID or ticket") {
		t.Fatalf("unknown peer: exit %d %q", r.code, r.stderr)
	}
}
