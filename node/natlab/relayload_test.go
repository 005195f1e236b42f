//go:build natlab

package natlab

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/chat/chattest"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// RELIABILITY L2 in the lab: N concurrent transfers through one of our
// relays. The relay runs alone on the public segment; l2Senders daemons
// share one machine behind a symmetric NAT (an office), l2Receivers
// daemons another machine behind another symmetric NAT (Lab.Colocate:
// one namespace, a kith home each). Every sender sends one file to every
// receiver, all at once with `kith send`: l2Senders × l2Receivers = 40
// distinct sender → receiver pairs, 32 of the small size and 8 of the
// large (each sender sends the large size to two receivers), each pair a
// connection of its own through the relay (hole punching cannot work
// through --random-fully, F8). The row's sizes (16 and 64 MiB, 1 GiB in
// all) with KITH_L2_SIZE=full; a quarter of them (4 and 16 MiB) otherwise,
// as CI runs it.
//
// It asserts what the row and N1 require of each transfer: it completes
// (kith send exits 0 with "done"), on the relayed path via our relay
// (every event of it, on both sides), with the receiver's copy equal to
// the source (SHA-256) and nothing else in its folder (N2); zero resets:
// no event of any transfer says paused or failed, or carries an error; and
// the relay's peak RSS (VmHWM) stays under 300 MiB. The aggregate rate and
// each size's slowest transfer against its median (≤ 3×) are figures,
// logged against their goals: both are speeds on a shared 2-core machine.
// A transfer starved for good is still caught: it misses l2Limit.
const (
	l2Senders   = 4
	l2Receivers = 10
	l2Limit     = 5 * time.Minute // every transfer done: a correctness bound
	l2MaxRSS    = 300 << 20       // the relay's peak resident set
	l2SizeEnv   = "KITH_L2_SIZE"
)

// l2Pair is one sender → receiver transfer.
type l2Pair struct {
	from, to string
	size     int64
	name     string // the file's name, unique in the receiver's folder
	src      string
	sum      invariants.Sum
	send     *Proc // kith send --json on the sender
	took     time.Duration
}

// l2Sizes are the small and large transfer sizes of this run.
func l2Sizes(t *testing.T) (small, large int64) {
	switch v := os.Getenv(l2SizeEnv); v {
	case "full":
		return 16 << 20, 64 << 20
	case "":
		return 4 << 20, 16 << 20
	default:
		t.Fatalf("%s=%q: want full, or unset for the CI size", l2SizeEnv, v)
	}
	return 0, 0
}

// TestRelayConcurrentTransfers is not parallel: it measures the relay's
// throughput with both cores to itself, and would load the cores other
// lab tests time their bounds on.
func TestRelayConcurrentTransfers(t *testing.T) {
	small, large := l2Sizes(t)
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "s0", NAT: Symmetric}, HostSpec{Name: "r0", NAT: Symmetric})
	var senders, receivers []string
	for i := range l2Senders {
		senders = append(senders, fmt.Sprintf("s%d", i))
		if i > 0 {
			w.lab.Colocate(w.lab.Host("s0"), senders[i])
		}
	}
	for i := range l2Receivers {
		receivers = append(receivers, fmt.Sprintf("r%d", i))
		if i > 0 {
			w.lab.Colocate(w.lab.Host("r0"), receivers[i])
		}
	}
	everyone := append(slices.Clone(senders), receivers...)
	relay := w.startRelay("relay", w.colleagues(everyone...)...)
	inbox := map[string]string{}
	for _, r := range receivers {
		inbox[r] = autoAccept(t, w.lab.Host(r))
	}
	for _, n := range everyone {
		w.startPeer(n)
	}
	pairs := l2Pairs(t, senders, receivers, small, large)
	w.l2Introduce(pairs)
	w.mustReserve(reserveLimit, everyone...)

	follow := map[string]*Proc{}
	for _, r := range receivers {
		follow[r] = w.lab.Spawn(w.lab.Host(r), "transfers", "--follow", "--json")
	}
	for r, p := range follow {
		if _, ok := waitFor(ReadyTimeout, pollEvery, func() bool { return strings.Contains(p.Logs(), "following transfers") }); !ok {
			t.Fatalf("%s's kith transfers --follow did not start:\n%s", r, p.Logs())
		}
	}

	rss := sampleRSS(t, relay.Pid())
	start := time.Now()
	for _, p := range pairs {
		p.send = w.lab.Spawn(w.lab.Host(p.from), "send", p.src, "--to", p.to, "--json")
	}
	var end time.Time
	for _, p := range pairs {
		last := w.l2Done(p, start.Add(l2Limit))
		p.took = last.Sub(p.send.start)
		if last.After(end) {
			end = last
		}
	}
	peak, sampled := rss.stop()

	w.l2CheckCopies(pairs, inbox)
	events := w.l2CheckEvents(pairs, follow)
	t.Logf("natlab: L2 %d events of the 40 transfers read on both sides (kith send --json, kith transfers --follow --json): every one relayed via our relay, none paused or failed",
		events)
	if peak >= l2MaxRSS {
		t.Errorf("the relay's peak RSS was %d MiB, want < %d MiB", peak>>20, l2MaxRSS>>20)
	}
	w.l2Figures(pairs, end.Sub(start), peak, sampled)
}

// l2Pairs makes the 40 pairs and their source files: pseudo-random bytes
// of a stream of their own, so that no two files are alike.
func l2Pairs(t *testing.T, senders, receivers []string, small, large int64) []*l2Pair {
	t.Helper()
	dir := t.TempDir()
	var pairs []*l2Pair
	buf := make([]byte, 1<<20)
	for si, s := range senders {
		for ri, r := range receivers {
			size := small
			if ri/2 == si { // two receivers each: 8 large pairs in all
				size = large
			}
			p := &l2Pair{from: s, to: r, size: size, name: fmt.Sprintf("l2-%s-%s.bin", s, r)}
			p.src = filepath.Join(dir, p.name)
			f, err := os.Create(p.src)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.NewChaCha8([32]byte{byte(si), byte(ri), 'l', '2'})
			h := sha256.New()
			for n := int64(0); n < size; n += int64(len(buf)) {
				rng.Read(buf)
				h.Write(buf)
				if _, err := f.Write(buf); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			p.sum = invariants.Sum(h.Sum(nil))
			pairs = append(pairs, p)
		}
	}
	if len(pairs) != 40 {
		t.Fatalf("%d pairs, want the row's 40", len(pairs))
	}
	return pairs
}

// l2Introduce makes each pair contacts, the receiver trusting the sender
// (it auto-accepts from trusted contacts). Each host's commands run in
// order, the hosts at once.
func (w *world) l2Introduce(pairs []*l2Pair) {
	w.t.Helper()
	cmds := map[string][][]string{}
	for _, p := range pairs {
		cmds[p.from] = append(cmds[p.from], []string{"contacts", "add", p.to, w.ids[p.to]})
		cmds[p.to] = append(cmds[p.to],
			[]string{"contacts", "add", p.from, w.ids[p.from]}, []string{"contacts", "trust", p.from})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(cmds))
	for name, list := range cmds {
		wg.Go(func() {
			for _, args := range list {
				r, err := w.lab.TryRun(w.lab.Host(name), args...)
				if err == nil && r.Code != 0 {
					err = fmt.Errorf("%s: kith %v: exit %d: %s", name, args, r.Code, r.Stderr)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		w.t.Fatal(err)
	}
}

// l2Done waits (until deadline) for p's kith send to end, checks it ended
// done on the relayed path via our relay, and returns when its last line
// arrived.
func (w *world) l2Done(p *l2Pair, deadline time.Time) time.Time {
	w.t.Helper()
	code, ok := p.send.Wait(time.Until(deadline))
	if !ok { // the lab shows every process's log as the test fails
		w.t.Fatalf("%s → %s (%d MiB): kith send still running %v after the start; last line %+v",
			p.from, p.to, p.size>>20, l2Limit, lastLine(p.send))
	}
	last := lastLine(p.send)
	if code != 0 || last.State != "done" {
		w.t.Fatalf("%s → %s: kith send exit %d, last line %+v\n%s", p.from, p.to, code, last, p.send.Logs())
	}
	if last.Path != node.PathRelayed || last.Relay != w.relayID {
		w.t.Errorf("%s → %s ended %s %s, want relayed via %s", p.from, p.to, last.Path, last.Relay, w.relayID)
	}
	lines := p.send.Lines()
	return lines[len(lines)-1].At
}

// l2CheckCopies checks every receiver's folder: each file it was sent is
// there under its name with the sender's SHA-256 (N1), and nothing else,
// no partial either (N2).
func (w *world) l2CheckCopies(pairs []*l2Pair, inbox map[string]string) {
	w.t.Helper()
	want := map[string]map[string]invariants.Sum{}
	for _, p := range pairs {
		if want[p.to] == nil {
			want[p.to] = map[string]invariants.Sum{}
		}
		want[p.to][p.name] = p.sum
		if got := invariants.SumFile(w.t, filepath.Join(inbox[p.to], p.name)); got != p.sum {
			w.t.Errorf("N1: %s's copy of %s is %v, sent %v", p.to, p.name, got, p.sum)
		}
	}
	for r, files := range want {
		if partials := invariants.CheckFinals(w.t, inbox[r], files); len(partials) > 0 {
			w.t.Errorf("%s: partials left after every transfer completed: %v", r, partials)
		}
	}
}

// l2CheckEvents reads every line both sides printed about the transfers
// (each sender's kith send --json, each receiver's kith transfers --follow
// --json) and fails on any that says paused or failed, carries an error or
// shows a path other than relayed via our relay: zero resets. Each
// receiver must have seen each of its transfers end done. It returns how
// many lines it read.
func (w *world) l2CheckEvents(pairs []*l2Pair, follow map[string]*Proc) (events int) {
	w.t.Helper()
	check := func(who string, ti node.TransferInfo) {
		events++
		if ti.State == "paused" || ti.State == "failed" || ti.Error != "" {
			w.t.Errorf("%s: a transfer was interrupted: %s, %q (%s ↔ %s)", who, ti.State, ti.Error, ti.PeerName, ti.Peer)
		}
		if ti.Path != "" && (ti.Path != node.PathRelayed || ti.Relay != w.relayID) {
			w.t.Errorf("%s: a transfer went %s %s, not relayed via our relay", who, ti.Path, ti.Relay)
		}
	}
	for _, p := range pairs {
		for _, l := range p.send.Lines() {
			var ti node.TransferInfo
			if err := json.Unmarshal([]byte(l.Text), &ti); err != nil {
				w.t.Fatalf("%s: kith send printed %q: %v", p.from, l.Text, err)
			}
			check(p.from+"'s send to "+p.to, ti)
		}
	}
	done := map[string]map[string]bool{} // receiver → IDs of transfers seen done
	for r, f := range follow {
		done[r] = map[string]bool{}
		for _, e := range transferEvents(w.t, f) {
			check(r+"'s transfers --follow", e.TransferInfo)
			if e.Direction == "in" && e.State == "done" {
				done[r][e.ID] = true
			}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(follow)) {
		if len(done[r]) != l2Senders {
			w.t.Errorf("%s's kith transfers --follow saw %d transfers end done, want %d", r, len(done[r]), l2Senders)
		}
	}
	return events
}

// l2Figures logs the speeds against the row's goals.
func (w *world) l2Figures(pairs []*l2Pair, wall time.Duration, peak int64, sampled int) {
	t := w.t
	t.Helper()
	var total int64
	bySize := map[int64][]time.Duration{}
	for _, p := range pairs {
		total += p.size
		bySize[p.size] = append(bySize[p.size], p.took)
	}
	agg := float64(total) / 1e6 / wall.Seconds()
	t.Logf("natlab: L2 %d pairs (%d senders × %d receivers, behind symmetric NATs), %d MiB relayed in %v: %.1f MB/s in all; relay peak RSS %d MiB (VmHWM; %d samples)",
		len(pairs), l2Senders, l2Receivers, total>>20, wall.Round(time.Millisecond), agg, peak>>20, sampled)
	for _, size := range slices.Sorted(maps.Keys(bySize)) {
		d := bySize[size]
		med, worst := chattest.Quantile(d, 0.5), chattest.Quantile(d, 1)
		t.Logf("natlab: L2 %d × %d MiB: median %v, slowest %v (%.2f× the median), fastest %v", len(d), size>>20,
			med.Round(time.Millisecond), worst.Round(time.Millisecond), float64(worst)/float64(med), chattest.Quantile(d, 0).Round(time.Millisecond))
		chattest.Goal(t, worst <= 3*med, "natlab: L2 slowest %d MiB transfer %v, goal ≤ 3× the median %v", size>>20, worst.Round(time.Millisecond), med.Round(time.Millisecond))
	}
	chattest.Goal(t, agg >= 60, "natlab: L2 aggregate %.1f MB/s through the relay, goal ≥ 60", agg)
}

// rssSampler reads a process's resident set from /proc while a test runs.
type rssSampler struct {
	pid   int
	stopc chan struct{}
	wg    sync.WaitGroup
	n     int
	max   int64
}

// sampleRSS starts reading pid's VmRSS every 200 ms (the largest is kept,
// a check on VmHWM, which the kernel keeps itself).
func sampleRSS(t *testing.T, pid int) *rssSampler {
	s := &rssSampler{pid: pid, stopc: make(chan struct{})}
	s.wg.Go(func() {
		for {
			if v, err := procStatus(pid, "VmRSS"); err == nil {
				s.n++
				s.max = max(s.max, v)
			}
			select {
			case <-s.stopc:
				return
			case <-time.After(200 * time.Millisecond): // poll interval
			}
		}
	})
	t.Cleanup(func() { s.stop() })
	return s
}

// stop ends the sampling and returns the process's peak resident set
// (VmHWM) and how many samples were taken. A sampled VmRSS above VmHWM
// would mean the reading is wrong; the larger is returned.
func (s *rssSampler) stop() (peak int64, samples int) {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	s.wg.Wait()
	hwm, err := procStatus(s.pid, "VmHWM")
	if err != nil {
		hwm = 0
	}
	return max(hwm, s.max), s.n
}

// procStatus reads a field in kB of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
