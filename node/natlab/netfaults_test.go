//go:build natlab

package natlab

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// Network faults (RELIABILITY F9, F12) on two colleagues behind cone NATs
// who talk directly (hole punched through the relay), in the middle of a
// file transfer from a to b.

// directPair builds a lab with a relay and two peers behind cone NATs
// listening on tr, a the sender and b the receiver, who trusts a and
// accepts a's files into the folder it returns; both are reserved on the
// relay and b's path to a is direct. The relay serves metrics on
// RELAY:9100.
func directPair(t *testing.T, tr transport) (*world, string) {
	t.Helper()
	w := newWorld(t, tr, HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone})
	relay := w.lab.Host("relay")
	w.startRelay("relay", append(w.colleagues("a", "b"), "--metrics", relay.Addr+":9100")...)
	inbox := autoAccept(t, w.lab.Host("b"))
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	w.lab.MustRun(w.lab.Host("b"), "contacts", "trust", "a")
	w.mustReserve(reserveLimit, "a", "b")
	if r := w.lab.Run(w.lab.Host("b"), "ping", w.ids["a"], "--count", "1", "--json"); r.Code != 0 {
		t.Fatalf("kith ping a: exit %d: %s", r.Code, r.Stderr)
	}
	if took, ok := waitFor(directLimit, directPoll, func() bool { return w.path("b", "a").Path == "direct" }); !ok {
		w.lab.Dump("no direct path")
		t.Fatalf("no direct path from b to a after %v: %+v", took, w.path("b", "a"))
	}
	return w, inbox
}

// randomFile writes size random bytes to a new file and returns its path.
func randomFile(t *testing.T, name string, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// incoming is name's (newest) incoming transfer, as kith transfers --json
// shows it.
func (w *world) incoming(name string) (node.TransferInfo, bool) {
	r := w.lab.Run(w.lab.Host(name), "transfers", "--json")
	if r.Code != 0 {
		return node.TransferInfo{}, false
	}
	var ts []node.TransferInfo
	if json.Unmarshal([]byte(r.Stdout), &ts) != nil {
		return node.TransferInfo{}, false
	}
	for _, ti := range ts {
		if ti.Direction == "in" {
			return ti, true
		}
	}
	return node.TransferInfo{}, false
}

// sendDone waits for a spawned kith send --json to exit and checks it
// ended with the transfer done.
func sendDone(t *testing.T, send *Proc, timeout time.Duration) node.TransferInfo {
	t.Helper()
	code, ok := send.Wait(timeout)
	if !ok {
		t.Fatalf("kith send still running after %v", timeout)
	}
	out := send.Lines()
	last := lastLine(send)
	if code != 0 || last.State != "done" {
		t.Fatalf("kith send: exit %d, last lines %v\n%s", code, out[max(0, len(out)-3):], send.Logs())
	}
	return last
}

// percentile is the p-th percentile (0 < p <= 100) of sorted ds, by the
// nearest-rank method: with 20 samples p99 is the largest.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// F12: a's link is starved to 1 Mbit/s each way (tc tbf on its router) and
// a sends b a file that saturates it. Meanwhile a sends b direct messages,
// one after another, paced. The transfer must make progress and every
// message must be delivered; the catalogue's goal is a chat latency p99
// under 1 s (messages on their own streams, not queued behind file
// chunks), logged as met or missed.

const (
	starvedRate   = "1mbit"
	starvedFile   = 8 << 20 // 70 s at 1 Mbit/s: it never finishes while the chat is measured
	starvedMsgs   = 24
	starvedPace   = 500 * time.Millisecond
	chatGoal      = time.Second
	deliverLimit  = 30 * time.Second // per message: a correctness bound, far above the goal
	saturateLimit = 30 * time.Second
)

func TestBandwidthStarvedLink(t *testing.T) {
	SkipWithoutTC(t)
	t.Parallel()
	for _, tr := range []transport{tcpOnly, quicOnly} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			starvedLink(t, tr)
		})
	}
}

func starvedLink(t *testing.T, tr transport) {
	w, inbox := directPair(t, tr)
	a, b := w.lab.Host("a"), w.lab.Host("b")
	follow := w.lab.Spawn(b, "inbox", "--follow", "--json", "--from", "a")
	// A first message opens the message stream and shows that b's
	// follower is listening, before the link is starved.
	if out := strings.TrimSpace(w.lab.MustRun(a, "msg", "b", "warm-up")); out != "delivered" {
		t.Fatalf("a's first message: %q, want delivered", out)
	}
	if _, err := nextMessage(follow, deliverLimit); err != nil {
		t.Fatalf("b's kith inbox --follow: %v", err)
	}
	if err := w.lab.Shape(a, starvedRate); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, "big.bin", starvedFile)
	send := w.lab.Spawn(a, "send", src, "--to", "b", "--json")
	start, _ := w.lab.linkStats(a)
	if took, ok := waitFor(saturateLimit, pollEvery, func() bool {
		s, err := w.lab.linkStats(a)
		return err == nil && s.Overlimits > start.Overlimits+100
	}); !ok {
		s, err := w.lab.linkStats(a)
		t.Fatalf("a's link is not saturated %v after kith send started: %+v (%v)\n%s", took, s, err, send.Logs())
	}

	before, _ := w.incoming("b")
	link0, _ := w.lab.linkStats(a)
	sent0 := lastLine(send)
	t0 := time.Now()
	var rtts, oneWay []time.Duration
	for i := range starvedMsgs {
		text := fmt.Sprintf("starved %d", i)
		sent := time.Now()
		r := w.lab.Run(a, "msg", "b", text)
		rtt := time.Since(sent)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "delivered" {
			t.Fatalf("message %d: exit %d %q, want delivered: %s", i, r.Code, r.Stdout, r.Stderr)
		}
		m, err := nextMessage(follow, deliverLimit)
		if err != nil || m.Text != text {
			t.Fatalf("b's follower after message %d: %+v %v", i, m, err)
		}
		rtts = append(rtts, rtt)
		oneWay = append(oneWay, m.arrived.Sub(m.SentAt))
		time.Sleep(starvedPace) // pacing: a person typing, not a flood
	}
	span := time.Since(t0)
	t.Logf("one-way latencies in the order sent: %v", roundAll(oneWay))
	link1, _ := w.lab.linkStats(a)
	after, _ := w.incoming("b")
	sent1 := lastLine(send)

	if after.DoneBytes <= before.DoneBytes || after.State != "active" {
		t.Fatalf("the transfer made no progress while the chat ran %v: %d → %d bytes verified (%s)",
			span, before.DoneBytes, after.DoneBytes, after.State)
	}
	slices.Sort(rtts)
	slices.Sort(oneWay)
	p99 := percentile(oneWay, 99)
	verdict := "goal met"
	if p99 >= chatGoal {
		verdict = "GOAL MISSED"
	}
	t.Logf("natlab: starved link %s %s: chat one-way p50 %v p99 %v, kith msg round trip p50 %v p99 %v (%d messages over %v); %s (p99 < %v)",
		tr.name, starvedRate, percentile(oneWay, 50).Round(time.Millisecond), p99.Round(time.Millisecond),
		percentile(rtts, 50).Round(time.Millisecond), percentile(rtts, 99).Round(time.Millisecond),
		len(oneWay), span.Round(time.Second), verdict, chatGoal)
	t.Logf("natlab: starved link %s: a's uplink carried %.0f kbit/s (tc's count: the transfer, plus the messages and pings), %d packets dropped by the bucket; a sent %d and b verified %d MiB of chunks meanwhile",
		tr.name, float64(link1.Bytes-link0.Bytes)*8/span.Seconds()/1e3, link1.Dropped-link0.Dropped,
		(sent1.DoneBytes-sent0.DoneBytes)>>20, (after.DoneBytes-before.DoneBytes)>>20)

	// The link recovers: the rest of the file goes at full speed, whole.
	if err := w.lab.Unshape(a); err != nil {
		t.Fatal(err)
	}
	sendDone(t, send, 2*time.Minute)
	invariants.SameFile(t, src, filepath.Join(inbox, "big.bin"))
}

// lastLine is the transfer as the last line kith send --json printed so
// far shows it (on the sender, done_bytes counts the chunk bytes sent).
func lastLine(send *Proc) node.TransferInfo {
	var ti node.TransferInfo
	if out := send.Lines(); len(out) > 0 {
		json.Unmarshal([]byte(out[len(out)-1].Text), &ti)
	}
	return ti
}

// roundAll rounds ds to milliseconds, for a log line.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// message is a line of kith inbox --follow --json and when it arrived.
type message struct {
	node.MessageInfo
	arrived time.Time
}

// nextMessage reads the follower's next message.
func nextMessage(follow *Proc, timeout time.Duration) (message, error) {
	l, err := follow.Line(timeout)
	if err != nil {
		return message{}, err
	}
	m := message{arrived: l.At}
	if err := json.Unmarshal([]byte(l.Text), &m.MessageInfo); err != nil {
		return m, fmt.Errorf("%q: %w", l.Text, err)
	}
	return m, nil
}

// F9: while a sends b a file over their direct connection, both reserved on
// the relay, a's router gets a new public address (renumbering). Every
// connection of a's is cut without a word: its packets now leave from an
// address nobody knows. Within 60 s a must hold a working reservation on
// the relay again and b must be connected to a again; the transfer must
// resume where it was (what b verified is kept) and complete, b's copy equal
// to the source (N1), with nothing under the final name before it is
// complete (N2), checked at every poll.

const (
	renumberTo    = "7.0.0.101"
	renumberRate  = "40mbit" // keeps the transfer in flight for seconds
	renumberFile  = 32 << 20
	renumberAfter = 4 << 20 // verified by b when the address changes
	recoverLimit  = 60 * time.Second
	renumberPoll  = 500 * time.Millisecond
	relayPingWait = 5 * time.Second
)

func TestNATRenumbering(t *testing.T) {
	SkipWithoutTC(t)
	t.Parallel()
	for _, tr := range []transport{tcpOnly, quicOnly} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			renumbering(t, tr)
		})
	}
}

// recovery is what the renumbering test saw, timed from the renumbering.
type recovery struct {
	reserved    time.Duration // a holds a reservation the relay can use
	reconnected time.Duration // b is connected to a, not at a's old address
	completed   time.Duration
	newRsvp     bool   // the relay granted a new reservation (else it kept a's connection)
	path        string // b's path to a when it reconnected
	lastDone    int64  // bytes b had verified at the last poll
}

func renumbering(t *testing.T, tr transport) {
	w, inbox := directPair(t, tr)
	a := w.lab.Host("a")
	if err := w.lab.Shape(a, renumberRate); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, "plan.bin", renumberFile)
	want := map[string]invariants.Sum{"plan.bin": invariants.SumFile(t, src)}
	send := w.lab.Spawn(a, "send", src, "--to", "b", "--json")
	var in node.TransferInfo
	if _, ok := waitFor(recoverLimit, pollEvery, func() bool {
		in, _ = w.incoming("b")
		return in.DoneBytes >= renumberAfter
	}); !ok || in.State != "active" {
		t.Fatalf("b's transfer is not under way: %+v\n%s", in, send.Logs())
	}
	before := w.reservations()
	old := a.PublicAddr
	if err := w.lab.Renumber(a, renumberTo); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	t.Logf("a's router renumbered %s → %s with %d of %d bytes verified by b", old, renumberTo, in.DoneBytes, in.Bytes)

	r := recovery{lastDone: in.DoneBytes}
	_, ok := waitFor(recoverLimit+time.Minute, renumberPoll, func() bool {
		return w.renumberPoll(t, &r, at, old, before, send, inbox, want)
	})
	switch {
	case r.reserved == 0 || r.reserved > recoverLimit:
		t.Errorf("a held no working reservation within %v of the renumbering (%v)", recoverLimit, r.reserved)
	case r.reconnected == 0 || r.reconnected > recoverLimit:
		t.Errorf("b was not connected to a again within %v of the renumbering (%v, last %s)", recoverLimit, r.reconnected, r.path)
	case !ok:
		t.Errorf("the transfer did not complete within %v of the renumbering", recoverLimit+time.Minute)
	}
	if t.Failed() {
		w.lab.Dump("no recovery from the renumbering")
		t.FailNow()
	}
	done := sendDone(t, send, time.Second)
	invariants.SameFile(t, src, filepath.Join(inbox, "plan.bin"))
	if partials := invariants.CheckFinals(t, inbox, want); len(partials) > 0 {
		t.Errorf("partials left after the transfer completed: %v", partials)
	}
	how := "kept its reservation: the relay's connection to a followed a to its new address"
	if r.newRsvp {
		how = "re-reserved on the relay from its new address"
	}
	t.Logf("natlab: renumbering %s: a %s %v after the change; b reconnected to a %v after it (%s); the transfer resumed and completed %v after it (last path %s), verified",
		tr.name, how, r.reserved.Round(time.Millisecond), r.reconnected.Round(time.Millisecond), r.path,
		r.completed.Round(time.Millisecond), done.Path)
}

// renumberPoll records what changed since the renumbering at at, checks N2
// and that b keeps what it verified, and reports whether the transfer
// completed.
func (w *world) renumberPoll(t *testing.T, r *recovery, at time.Time, old string, before float64, send *Proc, inbox string, want map[string]invariants.Sum) bool {
	invariants.CheckFinals(t, inbox, want)
	if in, ok := w.incoming("b"); ok {
		if in.DoneBytes < r.lastDone || in.State == "failed" {
			t.Errorf("b's transfer went from %d to %d bytes verified (%s %s): it did not resume", r.lastDone, in.DoneBytes, in.State, in.Error)
		}
		r.lastDone = max(r.lastDone, in.DoneBytes)
	}
	if r.reserved == 0 {
		if st, _ := w.status("a"); slices.Contains(st.Relays, w.relayID) {
			r.newRsvp = w.reservations() > before
			if r.newRsvp || w.relayReaches("a") {
				r.reserved = time.Since(at)
			}
		}
	}
	if r.reconnected == 0 {
		p := w.path("b", "a")
		r.path = p.Path + " " + p.Addr
		if p.Addr != "" && !strings.Contains(p.Addr, "/ip4/"+old+"/") {
			r.reconnected = time.Since(at)
		}
	}
	if send.Exited() && r.completed == 0 {
		r.completed = time.Since(at)
	}
	return r.reserved > 0 && r.reconnected > 0 && r.completed > 0
}

// reservations is how many reservations the relay (serving metrics on
// RELAY:9100) has granted, new and renewed; 0 when it does not answer.
func (w *world) reservations() float64 {
	relay := w.lab.Host("relay")
	text, err := fetch(w.t, relay.NS, "http://"+relay.Addr+":9100/metrics")
	if err != nil {
		return 0
	}
	opened, _ := metricValue(text, "libp2p_relaysvc_reservations_total", `type="opened"`)
	renewed, _ := metricValue(text, "libp2p_relaysvc_reservations_total", `type="renewed"`)
	return opened + renewed
}

// relayReaches reports whether the relay's kith ping reaches name within
// relayPingWait: a ping on a dead connection would wait much longer.
func (w *world) relayReaches(name string) bool {
	p := w.lab.Spawn(w.lab.Host("relay"), "ping", w.ids[name], "--count", "1")
	code, exited := p.Wait(relayPingWait)
	if !exited {
		p.Kill()
		return false
	}
	return code == 0
}
