//go:build natlab

package natlab

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

// RelayPort is where every lab relay listens, TCP and UDP.
const RelayPort = 4011

// pollEvery is how often the tests poll a daemon's status.
const pollEvery = 200 * time.Millisecond

// transport is the set of listen addresses of one test: the relay's and the
// peers'.
type transport struct {
	name  string
	relay func(ip string) []string
	peer  []string
}

var (
	tcpOnly = transport{
		name:  "tcp",
		relay: func(ip string) []string { return []string{fmt.Sprintf("/ip4/%s/tcp/%d", ip, RelayPort)} },
		peer:  []string{"/ip4/0.0.0.0/tcp/0"},
	}
	quicOnly = transport{
		name:  "quic",
		relay: func(ip string) []string { return []string{fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", ip, RelayPort)} },
		peer:  []string{"/ip4/0.0.0.0/udp/0/quic-v1"},
	}
	both = transport{
		name: "tcp+quic",
		relay: func(ip string) []string {
			return append(tcpOnly.relay(ip), quicOnly.relay(ip)...)
		},
		peer: append(slices.Clone(tcpOnly.peer), quicOnly.peer...),
	}
)

// world is a lab with a running relay and daemons.
type world struct {
	t     *testing.T
	lab   *Lab
	tr    transport
	relay *Proc
	// relayAddrs are the /p2p multiaddrs the relay printed.
	relayAddrs []string
	relayID    string
	ids        map[string]string // host name → peer ID
}

func newWorld(t *testing.T, tr transport, hosts ...HostSpec) *world {
	t.Helper()
	lab := New(t, Options{Kith: kithBin, Hosts: hosts})
	return &world{t: t, lab: lab, tr: tr, ids: map[string]string{}}
}

// flags repeats flag before each value.
func flags(flag string, values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, flag, v)
	}
	return out
}

// startRelay starts `kith relay` on host name, listening on the transport's
// addresses (on its own address) plus extra flags, and reads the n addresses
// it prints (n = the number of listen addresses, or of --announce flags).
func (w *world) startRelay(name string, extra ...string) *Proc {
	w.t.Helper()
	h := w.lab.Host(name)
	listen := w.tr.relay(h.Addr)
	args := append(flags("--listen", listen), "--no-mdns")
	args = append(args, extra...)
	p := w.lab.Start(h, "relay", args...)
	n := len(listen)
	if k := strings.Count(strings.Join(extra, " "), "--announce"); k > 0 {
		n = k
	}
	var addrs []string
	for range n {
		a, err := p.Line(10 * time.Second)
		if err != nil {
			w.t.Fatalf("relay addresses: %v\n%s", err, p.Logs())
		}
		addrs = append(addrs, a.Text)
	}
	w.relay, w.relayAddrs = p, addrs
	w.relayID = addrs[0][strings.LastIndex(addrs[0], "/")+1:]
	w.ids[name] = w.relayID
	return p
}

// colleagues returns the relay flags that allow the named hosts, as a relay
// operator allows colleagues: --allow with each one's peer ID, created with
// kith init before their daemons start.
func (w *world) colleagues(names ...string) []string {
	w.t.Helper()
	var out []string
	for _, name := range names {
		id := strings.TrimSpace(w.lab.MustRun(w.lab.Host(name), "init"))
		out = append(out, "--allow", id)
	}
	return out
}

// startPeer starts `kith daemon` on host name, bootstrapping from and
// reserving on the relay.
func (w *world) startPeer(name string, extra ...string) *Proc {
	w.t.Helper()
	h := w.lab.Host(name)
	args := flags("--listen", w.tr.peer)
	args = append(args, flags("--bootstrap", w.relayAddrs)...)
	args = append(args, flags("--relay", w.relayAddrs)...)
	args = append(args, "--no-mdns")
	p := w.lab.Start(h, "daemon", append(args, extra...)...)
	w.ids[name] = w.lab.ID(h)
	return p
}

// introduce makes a and b each other's contacts, by peer ID alone.
func (w *world) introduce(a, b string) {
	w.t.Helper()
	w.lab.MustRun(w.lab.Host(a), "contacts", "add", b, w.ids[b])
	w.lab.MustRun(w.lab.Host(b), "contacts", "add", a, w.ids[a])
}

// status is name's kith status; ok is false when it did not answer.
func (w *world) status(name string) (node.Status, bool) {
	return w.lab.Status(w.lab.Host(name))
}

// waitReserved waits until name's status lists the relay among its relays
// and returns how long that took.
func (w *world) waitReserved(name string, timeout time.Duration) (time.Duration, bool) {
	return waitFor(timeout, pollEvery, func() bool {
		st, ok := w.status(name)
		return ok && slices.Contains(st.Relays, w.relayID)
	})
}

// mustReserve is waitReserved that fails the test on timeout.
func (w *world) mustReserve(timeout time.Duration, names ...string) {
	w.t.Helper()
	for _, n := range names {
		if d, ok := w.waitReserved(n, timeout); !ok {
			st, _ := w.status(n)
			w.t.Fatalf("%s did not reserve a slot on the relay within %v; status: %+v", n, d, st)
		}
	}
}

// peerOf is the entry for peer ID id in st, if connected.
func peerOf(st node.Status, id string) (node.PeerStatus, bool) {
	for _, p := range st.Peers {
		if p.PeerID == id {
			return p, true
		}
	}
	return node.PeerStatus{}, false
}

// path is how name is connected to other right now ("" when not).
func (w *world) path(name, other string) node.PeerStatus {
	st, _ := w.status(name)
	p, _ := peerOf(st, w.ids[other])
	return p
}

// inbox is name's kith inbox --json, oldest first.
func (w *world) inbox(name string) []node.MessageInfo {
	w.t.Helper()
	out := w.lab.MustRun(w.lab.Host(name), "inbox", "--json")
	var ms []node.MessageInfo
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m node.MessageInfo
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			w.t.Fatalf("kith inbox --json: %v\n%s", err, out)
		}
		ms = append(ms, m)
	}
	return ms
}

// metricValue finds the sample `name{labels}` (or `name` with labels "") in
// Prometheus text exposition format.
func metricValue(text, name, labels string) (float64, bool) {
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}
