package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestChatRefusesWithoutTerminal(t *testing.T) {
	r := run(t, newHome(t), "chat")
	if r.code != exitUsage || !strings.Contains(r.stderr, "stdin and stdout must be a terminal") {
		t.Fatalf("kith chat without a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
}

// tmuxTerm is a real terminal: a pane of a tmux server of the test's own.
type tmuxTerm struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T, width, height int, argv ...string) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the real-terminal test needs it")
	}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	// Keep the pane after kith exits, to read how it left the terminal.
	writeFile(t, conf, "set -g remain-on-exit on\nset -g set-clipboard external\n")
	tm := &tmuxTerm{t: t, sock: fmt.Sprintf("kith-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	tm.run("-f", conf, "new-session", "-d", "-s", "chat", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), strings.Join(argv, " "))
	t.Cleanup(func() { exec.Command("tmux", "-L", tm.sock, "kill-server").Run() })
	return tm
}

func (tm *tmuxTerm) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tm *tmuxTerm) screen() string { return tm.run("capture-pane", "-p", "-t", "chat") }

func (tm *tmuxTerm) format(f string) string {
	return strings.TrimSpace(tm.run("display-message", "-p", "-t", "chat", f))
}

// keys types text, then presses Enter.
func (tm *tmuxTerm) keys(text string) {
	tm.run("send-keys", "-t", "chat", "-l", text)
	tm.run("send-keys", "-t", "chat", "Enter")
}

// waitFor polls the screen until ok says yes.
func (tm *tmuxTerm) waitFor(what string, ok func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the screen never showed %s:\n%s", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tm *tmuxTerm) waitText(want string) string {
	tm.t.Helper()
	return tm.waitFor(fmt.Sprintf("%q", want), func(s string) bool { return strings.Contains(s, want) })
}

// TestChatInTerminal runs kith chat in a real terminal against a daemon:
// a DM typed there reaches the other daemon, a hostile one from it shows
// escaped (no screen clearing, no clipboard write), the screen follows a
// resize, and /quit leaves the terminal as it was.
func TestChatInTerminal(t *testing.T) {
	c := startColleagues(t)
	tm := newTmux(t, 100, 30, kithBin, "--home", c.ana, "chat")
	tm.waitText("@ben")
	if tm.format("#{alternate_on}") != "1" {
		t.Fatal("kith chat should draw in the alternate screen")
	}

	tm.keys("/msg ben hello from the terminal")
	tm.waitText("me: hello from the terminal")
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(mustRun(t, c.ben, "inbox", "--json"), `"text":"hello from the terminal"`) {
		if time.Now().After(deadline) {
			t.Fatalf("ben's inbox never got the message: %s", mustRun(t, c.ben, "inbox", "--json"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	mustRun(t, c.ben, "msg", "ana", "hi\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07 there")
	s := tm.waitText(`ben: hi\x1b[2J\x1b]52;c;cm0gLXJmIH4=\a there`)
	if !strings.Contains(s, "me: hello from the terminal") {
		t.Fatalf("the conversation should still show:\n%s", s)
	}
	if bufs := strings.TrimSpace(tm.run("list-buffers")); bufs != "" {
		t.Fatalf("a peer's OSC 52 reached the terminal's clipboard: %s", bufs)
	}

	tm.run("resize-window", "-t", "chat", "-x", "60", "-y", "16")
	tm.waitFor("a 60×16 layout", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return len(lines) == 16 && strings.Contains(lines[15], "peer") && strings.Contains(s, "me: hello from the")
	})

	tm.keys("/quit")
	// The pane dies when the terminal closes; its status is known once tmux
	// reaped the process.
	tm.waitFor("kith chat exit", func(string) bool {
		return tm.format("#{pane_dead}") == "1" && tm.format("#{pane_dead_status}#{pane_dead_signal}") != ""
	})
	if st, alt := tm.format("#{pane_dead_status}"), tm.format("#{alternate_on}"); st != "0" || alt != "0" {
		t.Fatalf("kith chat exited with %s, alternate screen on=%s; want 0 and 0", st, alt)
	}
}
