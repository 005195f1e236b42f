package main

// CLI tests of file transfers: real kith processes, as a user runs them.
// Every test here needs the transfer engine (package files).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

// proc is a kith command running in the background.
type proc struct {
	cmd      *exec.Cmd
	lines    chan string // stdout, line by line
	mu       sync.Mutex
	errb     bytes.Buffer
	errLines chan string // stderr, line by line, as far as anyone reads
	done     chan struct{}
	code     int
}

// startKith starts kith in the background; it is killed when the test ends.
func startKith(t *testing.T, home string, args ...string) *proc {
	t.Helper()
	p := &proc{
		cmd:      exec.Command(kithBin, append([]string{"--home", home}, args...)...),
		lines:    make(chan string, 1024),
		errLines: make(chan string, 64),
		done:     make(chan struct{}),
	}
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.errb.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.errLines <- sc.Text():
			default: // nobody reads that far
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		<-stderrDone
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// line waits for the next line on stdout.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("%v exited (%d) before printing a line\nstderr: %s", p.cmd.Args[3:], p.code, p.stderr())
		}
		return l
	case <-time.After(waitBound):
		t.Fatalf("%v printed nothing within %s\nstderr: %s", p.cmd.Args[3:], waitBound, p.stderr())
	}
	return ""
}

// waitStderr waits for a line on stderr that contains s.
func (p *proc) waitStderr(t *testing.T, s string) {
	t.Helper()
	bound := time.After(waitBound)
	for {
		select {
		case l := <-p.errLines:
			if strings.Contains(l, s) {
				return
			}
		case <-p.done:
			t.Fatalf("%v exited (%d) before saying %q\nstderr: %s", p.cmd.Args[3:], p.code, s, p.stderr())
		case <-bound:
			t.Fatalf("%v did not say %q within %s\nstderr: %s", p.cmd.Args[3:], s, waitBound, p.stderr())
		}
	}
}

// event waits for a --json transfer line that f accepts.
func (p *proc) event(t *testing.T, f func(transferLine) bool) transferLine {
	t.Helper()
	for {
		ev := decodeJSON[transferLine](t, p.line(t))
		if f(ev) {
			return ev
		}
	}
}

// wait waits for the command to exit and returns its status and the rest of
// its stdout.
func (p *proc) wait(t *testing.T) (int, string) {
	t.Helper()
	var rest []string
	bound := time.After(waitBound)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return p.code, strings.Join(rest, "\n")
			}
			rest = append(rest, l)
		case <-bound:
			t.Fatalf("%v did not exit within %s\nstderr: %s", p.cmd.Args[3:], waitBound, p.stderr())
		}
	}
}

// randomFile writes n random bytes to dir/name.
func randomFile(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameBytes(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("received file: %v", err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s (%d and %d bytes)", got, want, len(b), len(a))
	}
}

// offerTo starts `kith send FILE --to ben --json` on ana and waits until
// ben's node holds the offer; it returns the sender and ben's record of it.
func offerTo(t *testing.T, c *colleagues, file string) (*proc, node.TransferInfo) {
	t.Helper()
	follow := startKith(t, c.ben, "transfers", "--follow", "--json")
	follow.waitStderr(t, "following transfers")
	send := startKith(t, c.ana, "send", file, "--to", "ben", "--json")
	first := send.event(t, func(transferLine) bool { return true })
	if first.Direction != "out" || first.State != "offered" || first.Kind != "state" || first.PeerName != "ben" {
		t.Fatalf("first line of send --json: %+v", first)
	}
	offer := follow.event(t, func(ev transferLine) bool { return ev.Kind == "offer" })
	if offer.Direction != "in" || offer.State != "offered" || offer.Peer != c.anaID.PeerID ||
		offer.PeerName != "ana" || offer.Bytes != first.Bytes {
		t.Fatalf("ben's offer: %+v", offer)
	}
	return send, offer.TransferInfo
}

func TestCLISendToAcceptedByTransfersAccept(t *testing.T) {
	c := startColleagues(t)
	src := randomFile(t, t.TempDir(), "report.bin", 5<<20+3)
	send, offer := offerTo(t, c, src)

	// The JSON fields CLI.md promises.
	raw := mustRun(t, c.ben, "transfers", "--json")
	obj := decodeJSON[[]map[string]any](t, raw)[0]
	for _, k := range []string{"id", "peer", "direction", "files", "bytes", "done_bytes", "state", "path"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("transfers --json lacks %q: %s", k, raw)
		}
	}
	dir := t.TempDir()
	if show := mustRun(t, c.ben, "transfers", "show", offer.ID[:8]); !strings.Contains(show, "report.bin") {
		t.Errorf("transfers show does not list report.bin:\n%s", show)
	}
	if out := mustRun(t, c.ben, "transfers", "accept", offer.ID[:8], "--dir", dir); !strings.Contains(out, "accepted") {
		t.Errorf("accept printed %q", out)
	}
	last := send.event(t, func(ev transferLine) bool { return ev.State == "done" || ev.State == "failed" })
	code, _ := send.wait(t)
	if code != 0 || last.State != "done" || last.DoneBytes != last.Bytes {
		t.Fatalf("send ended %d with %+v\nstderr: %s", code, last, send.stderr())
	}
	sameBytes(t, src, filepath.Join(dir, "report.bin"))
	// The sender records done when ben's Complete arrives, before it
	// writes Done; ben records done once it has read Done, a moment later
	// (under load it was seen still active, every byte verified).
	waitDone(t, c.ben, offer.ID)
	list := decodeJSON[[]node.TransferInfo](t, mustRun(t, c.ben, "transfers", "--json"))
	if len(list) != 1 || list[0].State != "done" || list[0].Dir != dir || !slices.Equal(list[0].Names, []string{"report.bin"}) {
		t.Fatalf("ben's transfers after: %+v", list)
	}
}

func TestCLISendRejectedExits5(t *testing.T) {
	c := startColleagues(t)
	src := randomFile(t, t.TempDir(), "unwanted.bin", 1000)
	send, offer := offerTo(t, c, src)
	if out := mustRun(t, c.ben, "transfers", "reject", offer.ID); !strings.Contains(out, "rejected") {
		t.Errorf("reject printed %q", out)
	}
	code, _ := send.wait(t)
	if code != exitRefused || !strings.Contains(send.stderr(), "rejected") {
		t.Fatalf("send after reject: exit %d, stderr %s", code, send.stderr())
	}
	if r := run(t, c.ben, "transfers", "accept", offer.ID); r.code != exitUsage {
		t.Fatalf("accepting a rejected offer: exit %d %s", r.code, r.stderr)
	}
}

// Ticket mode with no daemon on either side: each command runs its own node.
func TestCLITicketSendReceiveEmbedded(t *testing.T) {
	sender, receiver := newHome(t), newHome(t)
	src := randomFile(t, t.TempDir(), "movie.bin", 3<<20)
	send := startKith(t, sender, "send", src, "--json")
	ticket := decodeJSON[ticketLine](t, send.line(t)).Ticket
	if !strings.HasPrefix(ticket, "kith1") {
		t.Fatalf("ticket line: %q", ticket)
	}
	dir := t.TempDir()
	out := mustRun(t, receiver, "receive", ticket, "--dir", dir, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := decodeJSON[transferLine](t, lines[len(lines)-1])
	if last.State != "done" || last.Direction != "in" || last.Dir != dir || !slices.Equal(last.Names, []string{"movie.bin"}) {
		t.Fatalf("last line of receive --json: %+v", last)
	}
	sameBytes(t, src, filepath.Join(dir, "movie.bin"))
	if code, _ := send.wait(t); code != 0 {
		t.Fatalf("send exited %d after the fetch\nstderr: %s", code, send.stderr())
	}
	if !strings.Contains(send.stderr(), "kith receive") {
		t.Errorf("no hint on the sender's stderr: %s", send.stderr())
	}
}

// A name that exists in the folder is kept; the new file is "name (1).ext"
// and receive prints where it went.
func TestCLIReceiveKeepsExistingName(t *testing.T) {
	sender, receiver := newHome(t), newHome(t)
	src := randomFile(t, t.TempDir(), "data.bin", 100<<10)
	dir := t.TempDir()
	old := randomFile(t, dir, "data.bin", 10)
	oldBytes, _ := os.ReadFile(old)
	send := startKith(t, sender, "send", src, "--json")
	ticket := decodeJSON[ticketLine](t, send.line(t)).Ticket
	out := mustRun(t, receiver, "receive", ticket, "--dir", dir)
	want := filepath.Join(dir, "data (1).bin")
	if strings.TrimSpace(out) != want {
		t.Fatalf("receive printed %q, want %q", out, want)
	}
	sameBytes(t, src, want)
	if b, _ := os.ReadFile(old); !bytes.Equal(b, oldBytes) {
		t.Fatal("the existing data.bin was changed")
	}
	send.wait(t)
}

// Ctrl-C on a send against a daemon cancels the transfer and says so.
func TestCLISendInterruptCancels(t *testing.T) {
	c := startColleagues(t)
	src := randomFile(t, t.TempDir(), "x.bin", 1000)
	send, _ := offerTo(t, c, src)
	send.cmd.Process.Signal(syscall.SIGINT)
	code, _ := send.wait(t)
	if code == 0 || !strings.Contains(send.stderr(), "cancelled transfer") {
		t.Fatalf("interrupted send: exit %d, stderr %s", code, send.stderr())
	}
	list := decodeJSON[[]node.TransferInfo](t, mustRun(t, c.ana, "transfers", "--json"))
	if len(list) != 1 || list[0].State != "failed" {
		t.Fatalf("ana's transfer after Ctrl-C: %+v", list)
	}
}
