package main

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols/invariants"
)

// colleagues is a relay used only as bootstrap and two daemons, ana and ben,
// that know each other by peer ID alone (found through the DHT).
type colleagues struct {
	boot       string
	ana, ben   string // homes
	anaD, benD *daemon
	anaID      node.Identity
	benID      node.Identity
	check      *homeCheck
}

// startColleagues starts them, and the test's nothing-lost check over
// ana's and ben's homes (c.check; add others to it): call it first.
func startColleagues(t *testing.T) *colleagues {
	t.Helper()
	invariants.NoLeaks(t) // N7, of the test process: every helper process and reader ended
	relay := startDaemon(t, newHome(t), "relay")
	c := &colleagues{boot: relay.line(t), ana: newHome(t), ben: newHome(t)}
	c.anaD = startDaemon(t, c.ana, "daemon", "--bootstrap", c.boot)
	c.benD = startDaemon(t, c.ben, "daemon", "--bootstrap", c.boot)
	c.anaID = decodeJSON[node.Identity](t, mustRun(t, c.ana, "id", "--json"))
	c.benID = decodeJSON[node.Identity](t, mustRun(t, c.ben, "id", "--json"))
	mustRun(t, c.ana, "contacts", "add", "ben", c.benID.PeerID)
	mustRun(t, c.ben, "contacts", "add", "ana", c.anaID.PeerID)
	c.check = checkHomes(t, c.ana, c.ben) // N3, N6
	return c
}

func inbox(t *testing.T, home string, args ...string) []node.MessageInfo {
	t.Helper()
	out := mustRun(t, home, append([]string{"inbox", "--json"}, args...)...)
	var ms []node.MessageInfo
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			ms = append(ms, decodeJSON[node.MessageInfo](t, l))
		}
	}
	return ms
}

func TestCLIMessagesBothWays(t *testing.T) {
	c := startColleagues(t)
	if out := mustRun(t, c.ana, "msg", "ben", "hello ben"); strings.TrimSpace(out) != "delivered" {
		t.Fatalf("ana's msg printed %q, want delivered", out)
	}
	if out := mustRun(t, c.ben, "msg", "ana", "hi ana"); strings.TrimSpace(out) != "delivered" {
		t.Fatalf("ben's msg printed %q, want delivered", out)
	}
	got := inbox(t, c.ben, "--from", "ana")
	if len(got) != 2 || got[0].Text != "hello ben" || got[0].State != "received" || got[0].From != c.anaID.PeerID ||
		got[1].Text != "hi ana" || got[1].State != "delivered" || got[1].To != c.anaID.PeerID {
		t.Fatalf("ben's conversation with ana: %+v", got)
	}
	// The JSON fields CLI.md promises.
	raw := strings.SplitN(mustRun(t, c.ana, "inbox", "--json"), "\n", 2)[0]
	for _, k := range []string{"id", "from", "to", "text", "sent_at", "state"} {
		if !strings.Contains(raw, `"`+k+`":`) {
			t.Errorf("inbox --json line lacks %q: %s", k, raw)
		}
	}
}

// kill -9 of the receiver right after "delivered": the message is in its
// inbox after a restart, exactly once.
func TestCLIAckedMessageSurvivesKill9(t *testing.T) {
	c := startColleagues(t)
	if out := mustRun(t, c.ana, "msg", "ben", "do not lose this"); strings.TrimSpace(out) != "delivered" {
		t.Fatalf("msg printed %q", out)
	}
	c.benD.kill()
	startDaemon(t, c.ben, "daemon", "--bootstrap", c.boot)
	got := inbox(t, c.ben)
	if len(got) != 1 || got[0].Text != "do not lose this" || got[0].State != "received" {
		t.Fatalf("after kill -9 and restart ben has %+v", got)
	}
}

// A message queued while the receiver is down survives a restart of the
// sender's daemon and is delivered, once, when both are up.
func TestCLIQueuedThenDelivered(t *testing.T) {
	c := startColleagues(t)
	c.benD.stop(t)
	cmd := exec.Command(kithBin, "--home", c.ana, "msg", "ben", "-")
	cmd.Stdin = strings.NewReader("written while ben was away\n")
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "queued" {
		t.Fatalf("msg to stopped daemon: %q %v", out, err)
	}
	c.anaD.stop(t) // the sender's daemon restarts while the message is queued
	startDaemon(t, c.ben, "daemon", "--bootstrap", c.boot)
	follow := followInbox(t, c.ben)
	startDaemon(t, c.ana, "daemon", "--bootstrap", c.boot)
	m := follow.next(t)
	if m.Text != "written while ben was away" || m.From != c.anaID.PeerID {
		t.Fatalf("ben received %+v", m)
	}
	if got := inbox(t, c.ben); len(got) != 1 {
		t.Fatalf("ben has %d messages, want exactly 1: %+v", len(got), got)
	}
	// Ben stores the message before he acks it: ana may still be reading the
	// ack, so wait for her record to change.
	sent := followInbox(t, c.ana)
	for m := sent.next(t); m.State != "delivered"; m = sent.next(t) {
		if m.State != "queued" {
			t.Fatalf("ana's record of the message: %+v", m)
		}
	}
	anas := inbox(t, c.ana)
	if len(anas) != 1 || anas[0].State != "delivered" {
		t.Fatalf("ana's record of the message: %+v", anas)
	}
}

// follower is a running `kith ... --follow --json` whose lines are Ts.
type follower[T any] struct {
	what  string
	lines chan string
	done  chan struct{}
}

// follow starts kith with args on home and reads what it prints.
func follow[T any](t *testing.T, home string, args ...string) *follower[T] {
	t.Helper()
	cmd := exec.Command(kithBin, append([]string{"--home", home}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower[T]{what: strings.Join(args, " "), lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return f
}

// followInbox is a running `kith inbox --follow --json`.
func followInbox(t *testing.T, home string) *follower[node.MessageInfo] {
	return follow[node.MessageInfo](t, home, "inbox", "--follow", "--json")
}

// next returns the next line the follower prints.
func (f *follower[T]) next(t *testing.T) T {
	t.Helper()
	select {
	case l := <-f.lines:
		return decodeJSON[T](t, l)
	case <-f.done:
		t.Fatalf("kith %s ended", f.what)
	case <-time.After(waitBound):
		t.Fatalf("kith %s printed nothing within %s", f.what, waitBound)
	}
	var zero T
	return zero
}

func TestCLIMessageErrors(t *testing.T) {
	c := startColleagues(t)
	stranger := newHome(t)
	startDaemon(t, stranger, "daemon", "--bootstrap", c.boot)
	sid := decodeJSON[node.Identity](t, mustRun(t, stranger, "id", "--json"))
	tests := []struct {
		home string
		args []string
		code int
		want string
	}{
		{c.ana, []string{"msg", sid.PeerID, "hi"}, exitRefused, "not_allowed"},
		{c.ana, []string{"msg", "nobody", "hi"}, exitUsage, "not a contact name, peer ID or ticket"},
		{c.ana, []string{"msg", "ben", ""}, exitUsage, "empty message"},
		{c.ana, []string{"msg", "ben", strings.Repeat("x", 64<<10+1)}, exitUsage, "longer than"},
		{c.ana, []string{"contacts", "add", "ben", sid.PeerID}, exitUsage, "taken"},
		{c.ana, []string{"contacts", "add", "a b", sid.PeerID}, exitUsage, "name"},
		{c.ana, []string{"contacts", "rm", "carl"}, exitUsage, "no such contact"},
	}
	for _, tt := range tests {
		r := run(t, tt.home, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("kith %.60q: exit %d, stderr %q; want exit %d mentioning %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
}

func TestCLIContactsListTrustBlock(t *testing.T) {
	c := startColleagues(t)
	mustRun(t, c.ana, "contacts", "trust", "ben")
	out := mustRun(t, c.ana, "contacts", "ls", "--json")
	cs := decodeJSON[[]node.ContactInfo](t, out)
	if len(cs) != 1 || cs[0].Name != "ben" || cs[0].PeerID != c.benID.PeerID || !cs[0].Trusted || cs[0].Blocked {
		t.Fatalf("contacts: %s", out)
	}
	for _, k := range []string{`"name"`, `"peer_id"`, `"trusted"`, `"blocked"`} {
		if !strings.Contains(out, k) {
			t.Errorf("contacts ls --json lacks %s", k)
		}
	}
	mustRun(t, c.ben, "contacts", "block", "ana")
	r := run(t, c.ana, "msg", "ben", "let me in")
	if r.code == 0 && strings.TrimSpace(r.stdout) == "delivered" {
		t.Fatal("a blocked sender's message was delivered")
	}
	if got := inbox(t, c.ben); len(got) != 0 {
		t.Fatalf("ben stored a blocked sender's message: %+v", got)
	}
	mustRun(t, c.ana, "contacts", "rm", "ben")
	if out := mustRun(t, c.ana, "contacts", "ls"); strings.Contains(out, "ben") {
		t.Fatalf("ben still listed after rm: %s", out)
	}
}
