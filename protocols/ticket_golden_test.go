package protocols

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the vectors in the tests")

const goldenTicketDir = "testdata/tickets"

// goldenTicket is one golden vector. The peer's Ed25519 key is generated
// from a 32-byte seed made of Seed repeated, so the vectors are deterministic.
type goldenTicket struct {
	name    string
	seed    byte
	addrs   []string
	content []byte
	secret  []byte
}

func goldenTickets(tb testing.TB) []goldenTicket {
	relay := testPeer(tb, 0x04)
	return []goldenTicket{
		{name: "peer-only", seed: 0x01},
		{name: "addresses", seed: 0x02, addrs: []string{
			"/ip4/192.0.2.1/tcp/4001",
			"/ip4/192.0.2.1/udp/4001/quic-v1",
			"/ip6/2001:db8::1/tcp/4001",
			"/dns4/example.com/tcp/443/wss",
		}},
		{name: "relay", seed: 0x03, addrs: []string{
			"/ip4/198.51.100.7/tcp/4001/p2p/" + relay.String() + "/p2p-circuit",
		}},
		{name: "file", seed: 0x05,
			addrs:   []string{"/ip4/192.0.2.1/udp/4001/quic-v1"},
			content: counting(0x00, 32), // a file transfer's content ID: 32 bytes of BLAKE3
			secret:  counting(0xa0, 32),
		},
	}
}

func counting(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func (g goldenTicket) ticket(tb testing.TB) Ticket {
	t := Ticket{Peer: testPeer(tb, g.seed), Content: g.content, Secret: g.secret}
	for _, s := range g.addrs {
		t.Addrs = append(t.Addrs, mustAddr(tb, s))
	}
	return t
}

// ticketJSON is the decoded form of a golden ticket, stored next to it.
type ticketJSON struct {
	Seed    string   `json:"ed25519_seed"` // where Peer came from; not in the ticket
	Peer    string   `json:"peer"`
	Addrs   []string `json:"addrs"`
	Content string   `json:"content_hex"`
	Secret  string   `json:"secret_hex"`
}

func goldenJSON(tb testing.TB, seed byte, t Ticket) []byte {
	tb.Helper()
	j := ticketJSON{
		Seed:    hex.EncodeToString(repeat(seed, 32)),
		Peer:    t.Peer.String(),
		Addrs:   []string{},
		Content: hex.EncodeToString(t.Content),
		Secret:  hex.EncodeToString(t.Secret),
	}
	for _, a := range t.Addrs {
		j.Addrs = append(j.Addrs, a.String())
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

func TestGoldenTickets(t *testing.T) {
	for _, g := range goldenTickets(t) {
		t.Run(g.name, func(t *testing.T) {
			tk := g.ticket(t)
			base := filepath.Join(goldenTicketDir, g.name)
			if *update {
				writeGolden(t, base+".ticket", []byte(tk.String()+"\n"))
				writeGolden(t, base+".json", goldenJSON(t, g.seed, tk))
			}
			text := readGolden(t, base+".ticket")
			if got := tk.String(); got != strings.TrimSpace(string(text)) {
				t.Errorf("encoder: String() = %q, golden file has %q (run with -update if intended)", got, text)
			}
			parsed, err := ParseTicket(string(text))
			if err != nil {
				t.Fatalf("decoder: %v", err)
			}
			want := readGolden(t, base+".json")
			if got := goldenJSON(t, g.seed, parsed); !bytes.Equal(got, want) {
				t.Errorf("decoder: got\n%s\nwant (%s.json)\n%s", got, base, want)
			}
			if got := goldenJSON(t, g.seed, tk); !bytes.Equal(got, want) {
				t.Errorf("vector: got\n%s\nwant (%s.json)\n%s", got, base, want)
			}
		})
	}
}

// TestGoldenTicketFiles fails on files in testdata/tickets that no vector
// owns, so stale vectors do not linger after a rename.
func TestGoldenTicketFiles(t *testing.T) {
	var want []string
	for _, g := range goldenTickets(t) {
		want = append(want, g.name+".json", g.name+".ticket")
	}
	checkGoldenDir(t, goldenTicketDir, want)
}

// checkGoldenDir fails on files in dir that are not in want, so that stale
// vectors do not linger after a rename.
func checkGoldenDir(t *testing.T, dir string, want []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(want, e.Name()) {
			t.Errorf("%s/%s belongs to no golden vector", dir, e.Name())
		}
	}
}

// readGoldenHex reads a golden file of hex digits.
func readGoldenHex(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(string(readGolden(tb, path))))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}

func readGolden(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	return b
}

func writeGolden(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// goldenTicketStrings returns the committed golden tickets (fuzz seeds).
func goldenTicketStrings(tb testing.TB) []string {
	var out []string
	for _, g := range goldenTickets(tb) {
		out = append(out, string(readGolden(tb, filepath.Join(goldenTicketDir, g.name+".ticket"))))
	}
	return out
}
