package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/kithnet/kith/node"
)

// waitOutput waits until the program has drawn every one of wants.
func waitOutput(t *testing.T, tm *teatest.TestModel, wants ...string) {
	t.Helper()
	var seen bytes.Buffer
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen.Write(b)
		for _, w := range wants {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// waitCall polls the fake until it saw call.
func waitCall(t *testing.T, f *fakeBackend, call string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f.called(call) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s; calls: %s", call, f.callList())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTerminal drives the UI as a user would, through a program with a
// terminal's input and output: the event stream, typing, a resize.
func TestTerminal(t *testing.T) {
	f := newFake()
	m := New(t.Context(), f, Options{})
	t.Cleanup(m.Close)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))

	waitOutput(t, tm, "#general", "09:00 ana: welcome", "public · 2 peers")

	tm.Type("hello from the terminal")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitCall(t, f, `SendRoom general "hello from the terminal"`)
	waitOutput(t, tm, "me: hello from the terminal")

	// A message arrives on the event stream.
	f.events <- node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general",
		RoomMessage: &node.RoomMessageInfo{ID: "live1", Room: "general", From: anaID, Name: "ana", Text: "got it \x1b[2J", SentAt: time.Now()}}
	waitOutput(t, tm, `ana: got it \x1b[2J`)

	// A DM to ana, with the keys.
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitOutput(t, tm, "ana: direct")
	tm.Type("/msg ana lunch?")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitCall(t, f, `Send `+anaID+` "lunch?"`)
	waitOutput(t, tm, "me: lunch?")

	tm.Send(tea.WindowSizeMsg{Width: 60, Height: 16})
	waitOutput(t, tm, "me: lunch?")
	tm.Type("/quit")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	lines := strings.Split(final.View(), "\n")
	if len(lines) != 16 {
		t.Fatalf("after the resize the view has %d lines, want 16", len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w != 60 {
			t.Fatalf("after the resize line %d is %d wide, want 60: %q", i, w, l)
		}
	}
}

// pipeTerm is a terminal for Run: keys written to in, the screen read from
// out.
type pipeTerm struct {
	in  *io.PipeWriter
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *pipeTerm) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *pipeTerm) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func runInPipe(t *testing.T, f *fakeBackend) (*pipeTerm, chan error) {
	pr, pw := io.Pipe()
	term := &pipeTerm{in: pw}
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), f, Options{StatusEvery: -1, Program: []tea.ProgramOption{tea.WithInput(pr), tea.WithOutput(term), tea.WithoutSignals()}})
	}()
	t.Cleanup(func() { pw.Close() })
	return term, done
}

func waitScreen(t *testing.T, term *pipeTerm, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(term.screen(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q:\n%q", want, term.screen())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunRestoresTerminal runs the whole program through Run, as kith chat
// does, and checks it leaves the alternate screen on /quit.
func TestRunRestoresTerminal(t *testing.T) {
	f := newFake()
	term, done := runInPipe(t, f)
	waitScreen(t, term, "09:00 ana: welcome")
	io.WriteString(term.in, "hi all\r")
	waitCall(t, f, `SendRoom general "hi all"`)
	io.WriteString(term.in, "/quit\r")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after /quit")
	}
	s := term.screen()
	if i := strings.LastIndex(s, "\x1b[?1049h"); i < 0 || !strings.Contains(s[i:], "\x1b[?1049l") {
		t.Fatalf("the alternate screen was not entered and left:\n%q", s)
	}
}

// TestRunPanicRestoresTerminal: a panic in the event pump's goroutine ends
// Run with an error after the terminal is restored.
func TestRunPanicRestoresTerminal(t *testing.T) {
	f := newFake()
	f.panics = true
	term, done := runInPipe(t, f)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a panic")
	}
	if !errors.Is(err, tea.ErrProgramPanic) {
		t.Fatalf("Run: %v, want a recovered panic", err)
	}
	s := term.screen()
	if i := strings.LastIndex(s, "\x1b[?1049h"); i < 0 || !strings.Contains(s[i:], "\x1b[?1049l") {
		t.Fatalf("the alternate screen was not left:\n%q", s)
	}
}

// TestRunEndsWithContext: SIGTERM (the command's context) ends Run.
func TestRunEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	defer pw.Close()
	term := &pipeTerm{in: pw}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, newFake(), Options{Program: []tea.ProgramOption{tea.WithInput(pr), tea.WithOutput(term), tea.WithoutSignals()}})
	}()
	waitScreen(t, term, "#general")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
