//go:build natlab

package natlab

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// Faults survived (RELIABILITY §4.2) by real kith daemons behind NATs:
// F4, a TCP reset of the direct connection mid-transfer; F5, the same
// connection blackholed mid-transfer; and, in faults_partition_test.go, F3,
// a router cut off the internet for 30 s, then healed, mid-chat. Each fault
// is an iptables rule in a NAT router (faults.go).

// transferEvent is one line of `kith transfers --follow --json`.
type transferEvent struct {
	node.TransferInfo
	Kind string    `json:"kind"`
	At   time.Time `json:"-"`
}

// transferEvents parses what p printed so far.
func transferEvents(t *testing.T, p *Proc) []transferEvent {
	t.Helper()
	var out []transferEvent
	for _, l := range p.Lines() {
		var e transferEvent
		if err := json.Unmarshal([]byte(l.Text), &e); err != nil {
			t.Fatalf("kith %s printed %q: %v", p.Verb, l.Text, err)
		}
		e.At = l.At
		out = append(out, e)
	}
	return out
}

// midTransfer is a file going from a to b, both behind cone NATs, on the
// direct connection hole punching made, slowed down by a rate limit on a's
// uplink so that a fault can hit it mid-stream.
type midTransfer struct {
	t      *testing.T
	w      *world
	a, b   *Host
	inbox  string // b's download folder
	src    string
	size   int64
	want   map[string]invariants.Sum
	follow *Proc  // b: kith transfers --follow --json
	send   *Proc  // a: kith send --to b --json
	id     string // the transfer's ID on b
}

const (
	// midSize and midRate make a transfer last about 8 s on a quiet
	// machine.
	midSize = 16 << 20
	midRate = "16mbit"
	// midLimit bounds each wait of the transfer tests: generous
	// correctness bounds on a loaded machine, not speeds.
	midLimit = 90 * time.Second
)

// startMidTransfer builds the lab, brings a and b onto a direct path and
// starts the transfer; it returns once b has verified a quarter of it on
// the direct path.
func startMidTransfer(t *testing.T, tr transport) *midTransfer {
	t.Helper()
	w := newWorld(t, tr, HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Cone}, HostSpec{Name: "b", NAT: Cone})
	m := &midTransfer{t: t, w: w, a: w.lab.Host("a"), b: w.lab.Host("b"), size: midSize}
	w.startRelay("relay", w.colleagues("a", "b")...)
	m.inbox = autoAccept(t, m.b)
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	w.lab.MustRun(m.b, "contacts", "trust", "a")
	w.mustReserve(reserveLimit, "a", "b")
	if r := w.lab.Run(m.b, "ping", w.ids["a"], "--count", "1"); r.Code != 0 {
		t.Fatalf("b cannot reach a: exit %d: %s", r.Code, r.Stderr)
	}
	if took, ok := waitFor(directLimit, directPoll, func() bool { return w.path("b", "a").Path == "direct" }); !ok {
		t.Fatalf("no direct path between a and b after %v: %+v", took, w.path("b", "a"))
	}
	w.lab.LimitUplink(m.a, midRate)

	m.src = filepath.Join(t.TempDir(), "plan.bin")
	data := make([]byte, m.size)
	rand.Read(data)
	if err := os.WriteFile(m.src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m.want = map[string]invariants.Sum{"plan.bin": invariants.SumFile(t, m.src)}
	m.follow = w.lab.Spawn(m.b, "transfers", "--follow", "--json")
	m.send = w.lab.Spawn(m.a, "send", m.src, "--to", "b", "--json")
	e := m.waitEvent("a quarter verified on the direct path", time.Time{}, func(e transferEvent) bool {
		return e.Direction == "in" && e.Path == "direct" && e.DoneBytes >= m.size/4
	})
	m.id = e.ID
	if e.State != "active" || e.DoneBytes >= m.size {
		t.Fatalf("the transfer is %s at %d of %d bytes: not mid-stream", e.State, e.DoneBytes, m.size)
	}
	return m
}

// waitEvent waits, up to midLimit, for an event of b's transfer after
// since that satisfies f, and returns it; the test fails without one, and
// on a failed transfer.
func (m *midTransfer) waitEvent(what string, since time.Time, f func(transferEvent) bool) transferEvent {
	m.t.Helper()
	e, last, ok := m.lookFor(midLimit, since, f)
	if !ok {
		m.t.Fatalf("waited %v for %s; last event: %+v", midLimit, what, last)
	}
	return e
}

// lookFor is waitEvent for up to timeout, returning false (and the last
// event seen) when no event satisfied f.
func (m *midTransfer) lookFor(timeout time.Duration, since time.Time, f func(transferEvent) bool) (found, last transferEvent, ok bool) {
	m.t.Helper()
	_, ok = waitFor(timeout, 20*time.Millisecond, func() bool {
		for _, e := range transferEvents(m.t, m.follow) {
			if m.id != "" && e.ID != m.id || !e.At.After(since) {
				continue
			}
			last = e
			if e.State == "failed" {
				m.t.Fatalf("the transfer failed: %s", e.Error)
			}
			if f(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found, last, ok
}

// finish waits for the transfer to complete and checks it: a's kith send
// says done, b's copy is byte for byte the source (N1), nothing but it is
// in b's folder (N2), and no goroutine of the transfer is left in either
// daemon.
func (m *midTransfer) finish(aProc, bProc *Proc) transferEvent {
	m.t.Helper()
	done := m.waitEvent("done", time.Time{}, func(e transferEvent) bool { return e.State == "done" })
	code, ok := m.send.Wait(midLimit)
	if !ok || code != 0 {
		m.t.Fatalf("a's kith send: exited %v, code %d\n%s", ok, code, m.send.Logs())
	}
	out := m.send.Lines()
	var last transferEvent
	if err := json.Unmarshal([]byte(out[len(out)-1].Text), &last); err != nil || last.State != "done" {
		m.t.Fatalf("a's kith send ended with %q (%v), want done", out[len(out)-1].Text, err)
	}
	invariants.SameFile(m.t, m.src, filepath.Join(m.inbox, "plan.bin"))
	if partials := invariants.CheckFinals(m.t, m.inbox, m.want); len(partials) > 0 {
		m.t.Errorf("partials left after the transfer: %v", partials)
	}
	noTransferGoroutines(m.t, aProc, bProc)
	return done
}

// transferFuncs are the functions of package files that run only while a
// transfer is fetched or served.
var transferFuncs = []string{
	"files.(*pump)", "files.(*Service).fetchTransfer", "files.(*Service).runFetch",
	"files.(*Service).download", "files.(*Service).serveFetch", "files.(*Service).serveRequests",
	"files.(*Service).waitBulkConn", "files.(*Service).openFetch",
}

// noTransferGoroutines dumps the goroutines of each daemon (ending it) and
// fails if one still runs transfer code after the transfer ended.
func noTransferGoroutines(t *testing.T, procs ...*Proc) {
	t.Helper()
	for _, p := range procs {
		dump, err := p.Goroutines()
		if err != nil {
			t.Errorf("goroutines of %s: %v", p.Host.Name, err)
			continue
		}
		left, total := GoroutinesIn(dump, transferFuncs...)
		if retrier, _ := GoroutinesIn(dump, "files.(*retrier).run"); len(retrier) != 1 {
			t.Errorf("%s's goroutine dump has %d files retriers, want 1: not a dump of a running daemon?", p.Host.Name, len(retrier))
		}
		t.Logf("natlab: %s: %d goroutines at the end, %d in transfer code", p.Host.Name, total, len(left))
		for _, g := range left {
			t.Errorf("%s: a goroutine of the transfer is left:\n%s", p.Host.Name, g)
		}
	}
}

// Scenario F4 (RELIABILITY F4): mid-transfer, a's router answers TCP
// packets of a with a reset: those to and from b's router only (the direct
// connection; the relay stays reachable), or every one (no path is left
// until the rule goes). The receiver shows the transfer paused within 1 s,
// it resumes by itself (over the relay while the direct path is refused, or
// once the rule is gone), completes byte for byte, and no goroutine of it
// is left in either daemon.
func TestF4ResetMidTransfer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		all  bool
	}{{"direct", false}, {"everything", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := startMidTransfer(t, tcpOnly)
			var f *Fault
			if c.all {
				f = m.w.lab.ResetAll(m.a, m.b.PublicAddr)
			} else {
				f = m.w.lab.ResetFlow(m.a, m.b.PublicAddr)
			}
			r := m.survive(f)
			t.Logf("natlab: F4 reset (%s): paused %v after the rule (bound 1s), resumed %v after the pause %s (%s), done %v after the reset (%s); %d packets reset",
				c.name, r.toPause.Round(time.Millisecond), r.toResume.Round(time.Millisecond), r.when, r.resumedOn,
				r.toDone.Round(time.Millisecond), r.doneOn, r.packets)
			if r.toPause > time.Second {
				t.Errorf("the transfer showed paused %v after the reset, want within 1s", r.toPause)
			}
		})
	}
}

// Scenario F5 (RELIABILITY F5): mid-transfer, a's router silently drops
// every packet between a and b's router, over TCP and over QUIC. Nothing
// tells either side: the receiver's frame deadline (30 s) or the
// connection's keepalive must notice. The transfer pauses within
// blackholeLimit, resumes by itself (over the relay, which stays
// reachable, or once the rule is gone), completes byte for byte, and no
// goroutine of it is left blocked in either daemon.
func TestF5BlackholeMidTransfer(t *testing.T) {
	t.Parallel()
	for _, tr := range []transport{tcpOnly, quicOnly} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			m := startMidTransfer(t, tr)
			f := m.w.lab.BlackholeFlow(m.a, m.b.PublicAddr)
			r := m.survive(f)
			t.Logf("natlab: F5 blackhole (%s): paused %v after the rule (bound %v), resumed %v after the pause %s (%s), done %v after the blackhole (%s); %d packets dropped",
				tr.name, r.toPause.Round(time.Millisecond), blackholeLimit, r.toResume.Round(time.Millisecond), r.when, r.resumedOn,
				r.toDone.Round(time.Millisecond), r.doneOn, r.packets)
			if r.toPause > blackholeLimit {
				t.Errorf("the transfer showed paused %v after the blackhole, want within %v", r.toPause, blackholeLimit)
			}
		})
	}
}

// blackholeLimit bounds how long a transfer may hang on a silent
// connection: kith's frame deadline (files.Config.FrameTimeout, 30 s),
// with room for a loaded machine.
const blackholeLimit = 45 * time.Second

// survival is what happened to a transfer a fault hit.
type survival struct {
	toPause, toResume, toDone time.Duration
	when                      string // "while the rule held" or "after it was lifted"
	resumedOn, doneOn         string // the paths it took
	packets                   int64
}

// survive follows the transfer through fault f: it waits for the pause,
// checks the folder (N2), holds the rules for up to resetHold more while
// watching for the resume, lifts them, and finishes the transfer (N1, N2,
// no goroutine left).
func (m *midTransfer) survive(f *Fault) survival {
	t := m.t
	t.Helper()
	aProc, bProc := m.w.daemonProc("a"), m.w.daemonProc("b")
	paused := m.waitEvent("paused", f.At, func(e transferEvent) bool { return e.State == "paused" })
	r := survival{toPause: paused.At.Sub(f.At)}
	t.Logf("paused %v after %s, at %d of %d bytes: %s", r.toPause.Round(time.Millisecond), f.What, paused.DoneBytes, m.size, paused.Error)
	if n := f.Packets(); n == 0 {
		t.Fatalf("the rule matched no packet: the transfer was not on the flow it cuts")
	}
	invariants.CheckFinals(t, m.inbox, m.want) // N2 while paused
	progress := func(e transferEvent) bool { return e.Kind == "progress" && e.DoneBytes > paused.DoneBytes }
	resumed, _, during := m.lookFor(resetHold, paused.At, progress)
	r.packets = f.Packets()
	f.Lift()
	r.when = "while the rule held"
	if !during {
		r.when = "after it was lifted"
		resumed = m.waitEvent("progress after the pause", paused.At, progress)
	}
	r.toResume, r.resumedOn = resumed.At.Sub(paused.At), resumed.Path
	done := m.finish(aProc, bProc)
	r.toDone, r.doneOn = done.At.Sub(f.At), done.Path
	return r
}

// resetHold is how long the F4 and F5 rules stay after the transfer
// paused, at most.
const resetHold = 10 * time.Second

// daemonProc is the kith daemon w started last on host name.
func (w *world) daemonProc(name string) *Proc {
	t := w.t
	t.Helper()
	w.lab.mu.Lock()
	defer w.lab.mu.Unlock()
	var last *Proc
	for _, p := range w.lab.procs {
		if p.Host.Name == name && p.Verb == "daemon" {
			last = p
		}
	}
	if last == nil {
		t.Fatalf("no daemon runs on %s", name)
	}
	return last
}
