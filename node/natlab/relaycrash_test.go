//go:build natlab

package natlab

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// RELIABILITY F2, mid-transfer and mid-chat: two colleagues behind
// symmetric NATs (MASQUERADE --random-fully: hole punching cannot work, so
// everything between them goes through our relay) move a file and
// exchange direct messages, both ways, all the time. The relay is killed
// (SIGKILL) a fifth of the way into the transfer and started again once
// each side has sent a message into the outage. Both reserve again within
// 30 s (counted on the restarted relay's metrics); the transfer resumes and
// completes with the sender's bytes, and no final name ever holds anything
// else (scanned all along); every message is in both conversations exactly
// once, in the order its sender sent it, and delivered. The outage lasts
// until both peers noticed the relay was gone (their reservations lost),
// so that messages are queued and the transfer pauses, not merely stalls.

const (
	crashFileSize  = 160 << 20 // enough to be mid-transfer at the kill, on a fast machine too
	crashAt        = 0.2       // fraction of the file verified when the relay is killed
	chatEvery      = 400 * time.Millisecond
	transferLimit  = 3 * time.Minute // from the restart to the transfer's end: a correctness bound
	deliveredLimit = time.Minute     // from the transfer's end to every message delivered
	// noticeLimit bounds how long the peers take to see the relay gone:
	// over QUIC nothing tells them but a ping that goes unanswered (kith
	// pings its relays every 10 s) or QUIC's 30 s idle timeout.
	noticeLimit = time.Minute
)

func TestRelayRestartMidTransferAndChat(t *testing.T) {
	t.Parallel()
	w := newWorld(t, both,
		HostSpec{Name: "relay"}, HostSpec{Name: "a", NAT: Symmetric}, HostSpec{Name: "b", NAT: Symmetric})
	relayHost := w.lab.Host("relay")
	metrics := fmt.Sprintf("%s:9100", relayHost.Addr)
	relayArgs := append(w.colleagues("a", "b"), "--metrics", metrics)
	relay := w.startRelay("relay", relayArgs...)
	a, b := w.lab.Host("a"), w.lab.Host("b")
	inbox := autoAccept(t, b)
	w.startPeer("a")
	w.startPeer("b")
	w.introduce("a", "b")
	w.mustReserve(reserveLimit, "a", "b")
	w.lab.MustRun(b, "contacts", "trust", "a")

	src := filepath.Join(t.TempDir(), "plan.bin")
	data := make([]byte, crashFileSize)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	data = nil
	want := map[string]invariants.Sum{"plan.bin": invariants.SumFile(t, src)}
	scan := scanFinals(t, inbox, want)

	chat := startChat(t, w, [2]string{"a", "b"}, [2]string{"b", "a"})
	send := w.lab.Spawn(a, "send", src, "--to", "b", "--json")
	at, err := followSend(send, 2*time.Minute, func(ti node.TransferInfo) bool {
		return float64(ti.DoneBytes) >= crashAt*float64(ti.Bytes) && ti.Bytes > 0
	})
	if err != nil {
		t.Fatalf("the transfer never got %.0f%% through: %v", 100*crashAt, err)
	}
	if at.State == "done" {
		t.Fatalf("the transfer ended before the relay could be killed: %+v", at)
	}
	if at.Path != node.PathRelayed || at.Relay != w.relayID {
		t.Fatalf("the transfer runs %s %s, want relayed via %s", at.Path, at.Relay, w.relayID)
	}

	relay.Kill()
	killed := time.Now()
	sentBefore := chat.counts()
	// The outage: until both peers noticed the relay is gone (no
	// reservation left) and each sent two messages the relay could not
	// carry; then it comes back, as a supervisor restarts it.
	noticed, ok := waitFor(noticeLimit, pollEvery, func() bool {
		for _, n := range []string{"a", "b"} {
			if st, ok := w.status(n); !ok || slices.Contains(st.Relays, w.relayID) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the peers still list the relay %v after it was killed", noticed)
	}
	if _, ok := waitFor(noticeLimit, pollEvery, func() bool { return chat.sentSince(sentBefore, 2) }); !ok {
		t.Fatalf("the chat stopped while the relay was down: %v sent before, %v now", sentBefore, chat.counts())
	}
	w.startRelay("relay", relayArgs...)
	restarted := time.Now()
	down := restarted.Sub(killed)

	var opened float64
	reReserved, ok := waitFor(reReserveLimit, pollEvery, func() bool {
		text, err := fetch(t, relayHost.NS, "http://"+metrics+"/metrics")
		if err != nil {
			return false
		}
		opened, _ = metricValue(text, "libp2p_relaysvc_reservations_total", `type="opened"`)
		return opened >= 2
	})
	if !ok {
		w.lab.Dump("no re-reservation")
		t.Fatalf("the restarted relay saw %v reservations in %v, want both peers' within %v", opened, reReserved, reReserveLimit)
	}

	last, err := followSend(send, transferLimit, func(ti node.TransferInfo) bool { return ti.State == "done" || ti.State == "failed" })
	if err != nil || last.State != "done" {
		w.lab.Dump("the transfer did not complete")
		t.Fatalf("after the restart the transfer ended %+v (%v), want done within %v", last, err, transferLimit)
	}
	completed := time.Since(restarted)
	if code, ok := send.Wait(30 * time.Second); !ok || code != 0 {
		t.Fatalf("kith send: exit %d (exited: %v)\n%s", code, ok, send.Logs())
	}
	if last.Path != node.PathRelayed || last.Relay != w.relayID {
		t.Fatalf("the transfer ended %s %s, want relayed via %s", last.Path, last.Relay, w.relayID)
	}
	scan.stop()
	invariants.SameFile(t, src, filepath.Join(inbox, "plan.bin"))
	if partials := invariants.CheckFinals(t, inbox, want); len(partials) > 0 {
		t.Errorf("partials left after the transfer completed: %v", partials)
	}

	// Go on chatting a little after the transfer, then check both
	// conversations.
	mark := chat.counts()
	if _, ok := waitFor(noticeLimit, pollEvery, func() bool { return chat.sentSince(mark, 2) }); !ok {
		t.Fatalf("the chat stalled after the restart: %v", chat.counts())
	}
	sent := chat.stop()
	delivered, ok := waitFor(deliveredLimit, time.Second, func() bool {
		return allDelivered(w, "a", sent) && allDelivered(w, "b", sent)
	})
	if !ok {
		t.Errorf("not every message was delivered %v after the chat stopped", delivered)
	}
	for _, n := range []string{"a", "b"} {
		checkConversation(t, w, n, sent)
	}
	t.Logf("natlab: F2 relay killed at %.0f%% of a %d MiB relayed transfer and down %v (both peers dropped it %v after the kill): both peers re-reserved %v after the restart; "+
		"transfer done %v after the restart, verified; %d + %d DMs (%d + %d sent while it was down, %d queued) each shown once, in order, on both sides",
		100*float64(at.DoneBytes)/float64(at.Bytes), crashFileSize>>20, down.Round(time.Millisecond), noticed.Round(time.Millisecond),
		reReserved.Round(time.Millisecond), completed.Round(time.Millisecond),
		len(sent["a"]), len(sent["b"]), chat.sentDuring("a", killed, restarted), chat.sentDuring("b", killed, restarted), chat.queued)
}

// followSend reads the NDJSON lines of a running `kith send --json` until
// one satisfies until, and returns it.
func followSend(send *Proc, timeout time.Duration, until func(node.TransferInfo) bool) (node.TransferInfo, error) {
	deadline := time.Now().Add(timeout)
	var last node.TransferInfo
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return last, fmt.Errorf("nothing after %v; last %+v", timeout, last)
		}
		line, err := send.Line(left)
		if err != nil {
			return last, fmt.Errorf("%w\n%s", err, send.Logs())
		}
		var ti node.TransferInfo
		if json.Unmarshal([]byte(line.Text), &ti) != nil {
			continue
		}
		last = ti
		if until(ti) {
			return ti, nil
		}
	}
}

// finalsScan checks the receive folder all along a transfer (N2): the
// final name is absent or holds exactly what was sent, and nothing else
// but partials is there. (invariants.CheckFinals does the same from the
// test's goroutine, at the end: it may stop the test, which only that
// goroutine may.)
type finalsScan struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func scanFinals(t *testing.T, dir string, want map[string]invariants.Sum) *finalsScan {
	s := &finalsScan{done: make(chan struct{})}
	s.wg.Go(func() {
		for {
			select {
			case <-s.done:
				return
			case <-time.After(100 * time.Millisecond): // poll interval
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Errorf("scanning %s: %v", dir, err)
				return
			}
			for _, e := range entries {
				name := e.Name()
				if invariants.IsPartial(name) {
					continue
				}
				sum, ok := want[name]
				if !ok {
					t.Errorf("N2: %s appeared under a final name, but was never sent", name)
					return
				}
				if got, err := sha256File(filepath.Join(dir, name)); err != nil || got != sum {
					t.Errorf("N2: %s is under its final name with content that is not what was sent (%v)", name, err)
				}
				return // the final name holds the whole file: nothing more to see
			}
		}
	})
	t.Cleanup(s.stop)
	return s
}

func sha256File(path string) (invariants.Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return invariants.Sum{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return invariants.Sum{}, err
	}
	return invariants.Sum(h.Sum(nil)), nil
}

func (s *finalsScan) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
}

// chatter sends direct messages, each from one host to another, one after
// the other every chatEvery, until stopped, and records what it sent.
type chatter struct {
	stopc chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	sent   map[string][]string    // sender host → texts, in order
	at     map[string][]time.Time // when each was sent
	queued int                    // kith msg said queued (the peer was out of reach)
}

func startChat(t *testing.T, w *world, pairs ...[2]string) *chatter {
	c := &chatter{stopc: make(chan struct{}), sent: map[string][]string{}, at: map[string][]time.Time{}}
	for _, p := range pairs {
		from, to := p[0], p[1]
		h := w.lab.Host(from)
		c.wg.Go(func() {
			tick := time.NewTicker(chatEvery) // pacing
			defer tick.Stop()
			for i := 1; ; i++ {
				select {
				case <-c.stopc:
					return
				case <-tick.C:
				}
				text := fmt.Sprintf("f2 %s→%s #%d", from, to, i)
				c.mu.Lock()
				c.sent[from] = append(c.sent[from], text)
				c.at[from] = append(c.at[from], time.Now())
				c.mu.Unlock()
				r := w.lab.Run(h, "msg", to, text)
				out := strings.TrimSpace(r.Stdout)
				if r.Code != 0 || (out != "delivered" && out != "queued") {
					t.Errorf("%s: kith msg %s %q: exit %d, %q: %s", from, to, text, r.Code, out, r.Stderr)
				}
				if out == "queued" {
					c.mu.Lock()
					c.queued++
					c.mu.Unlock()
				}
			}
		})
	}
	return c
}

// counts is how many messages each sender has sent so far.
func (c *chatter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.sent {
		out[k] = len(v)
	}
	return out
}

// sentSince reports whether every sender sent at least n messages more
// than in before.
func (c *chatter) sentSince(before map[string]int, n int) bool {
	now := c.counts()
	for k := range now {
		if now[k] < before[k]+n {
			return false
		}
	}
	return len(now) > 0
}

// sentDuring counts from's messages sent between from and to.
func (c *chatter) sentDuring(from string, start, end time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.at[from] {
		if !at.Before(start) && at.Before(end) {
			n++
		}
	}
	return n
}

// stop ends the chat once every kith msg under way returned, and returns
// what each sender sent.
func (c *chatter) stop() map[string][]string {
	close(c.stopc)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for k, v := range c.sent {
		out[k] = slices.Clone(v)
	}
	return out
}

// allDelivered reports whether every message name sent is marked delivered
// in its conversation.
func allDelivered(w *world, name string, sent map[string][]string) bool {
	r := w.lab.Run(w.lab.Host(name), "inbox", "--json")
	if r.Code != 0 {
		return false
	}
	delivered := 0
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var m node.MessageInfo
		if json.Unmarshal([]byte(l), &m) == nil && m.From == w.ids[name] && m.State == "delivered" {
			delivered++
		}
	}
	return delivered == len(sent[name])
}

// checkConversation compares name's whole conversation (kith inbox --json)
// with what each side sent: each message exactly once, in its sender's
// order (N6), and everything name sent delivered.
func checkConversation(t *testing.T, w *world, name string, sent map[string][]string) {
	t.Helper()
	byID := map[string]string{}
	for host := range sent {
		byID[w.ids[host]] = host
	}
	var transcript []invariants.Said[string, string]
	for _, m := range w.inbox(name) {
		from, ok := byID[m.From]
		if !ok {
			t.Errorf("%s's conversation has a message from %s, who is not in the chat", name, m.From)
			continue
		}
		transcript = append(transcript, invariants.Said[string, string]{From: from, Msg: m.Text})
		if from == name && m.State != "delivered" {
			t.Errorf("%s's own message %q is %s, not delivered", name, m.Text, m.State)
		}
	}
	invariants.PerSenderOrder(t, sent, transcript)
}
