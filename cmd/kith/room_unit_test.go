package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/cmd/kith/tui"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/protocols"
)

// TestSecretReadersAgree: one secret file gives one secret, whether kith
// room join --secret-file reads it (from the file, or "-": stdin) or kith
// chat does (kith chat ROOM --secret-file F, /join NAME --secret-file F);
// a bad one is refused by both, without showing it.
func TestSecretReadersAgree(t *testing.T) {
	dir := t.TempDir()
	longest := strings.Repeat("k", protocols.MaxRoomSecret)
	tests := []struct {
		content string
		want    string // "" means refused
	}{
		{"correct horse\n", "correct horse"},
		{"correct horse\r\n", "correct horse"},
		{"correct horse", "correct horse"},
		{"correct horse\n\n", "correct horse\n"}, // one line break is dropped, not all
		{"correct horse\r", "correct horse\r"},   // a lone CR is not a line break
		{" spaced secret \n", " spaced secret "}, // spaces are the secret's
		{"two lines\nkept\n", "two lines\nkept"},
		{"8 bytes!\n", "8 bytes!"},
		{longest + "\r\n", longest},
		{"\n", ""},
		{"\r\n", ""},
		{"", ""},
		{"short\n", ""},
		{"7 bytes\n", ""},
		{longest + "k", ""},
		{longest + "k\n", ""},
		{strings.Repeat("x", 64<<10), ""},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, "secret")
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		readers := []struct {
			name string
			read func() ([]byte, error)
		}{
			{"kith room --secret-file F", func() ([]byte, error) { return secretFromFile(path, nil) }},
			{"kith room --secret-file -", func() ([]byte, error) { return secretFromFile("-", strings.NewReader(tt.content)) }},
			{"kith chat, /join --secret-file F", func() ([]byte, error) { return tui.ReadSecretFile(path) }},
		}
		for _, r := range readers {
			got, err := r.read()
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("#%d %s: %q accepted; want it refused", i, r.name, got)
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Errorf("#%d %s: %q, %v; want %q", i, r.name, got, err, tt.want)
			case err != nil && (strings.Contains(err.Error(), "short") || strings.Contains(err.Error(), "kkkk")):
				t.Errorf("#%d %s: the error shows the secret: %v", i, r.name, err)
			}
		}
		// The CLI's refusals are usage errors (exit 2).
		if _, err := secretFromFile(path, nil); tt.want == "" && exitCode(err) != exitUsage {
			t.Errorf("#%d: exit %d for a bad secret, want %d", i, exitCode(err), exitUsage)
		}
	}
	if _, err := secretFromFile(filepath.Join(dir, "missing"), nil); exitCode(err) != exitUsage {
		t.Errorf("a missing file: %v", err)
	}
	// In kith chat standard input is the terminal: "-" is refused, not read.
	if _, err := tui.ReadSecretFile("-"); err == nil || !strings.Contains(err.Error(), "name a file") {
		t.Errorf(`kith chat --secret-file -: %v`, err)
	}
}

// --private needs a terminal; without one it says what to do instead.
func TestPromptSecretNeedsTerminal(t *testing.T) {
	var stderr bytes.Buffer
	_, err := roomSecret("", true, "ops", strings.NewReader("typed secret\n"), &stderr)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--secret-file") || stderr.Len() != 0 {
		t.Fatalf("--private without a terminal: %v (stderr %q)", err, stderr.String())
	}
	if s, err := roomSecret("", false, "lobby", nil, &stderr); s != nil || err != nil {
		t.Fatalf("an open room: %q, %v", s, err)
	}
}

// --follow prints every message once, whether the listing or the event
// stream (or both) brought it; our own message listed before it had an ID
// is printed once, with the ID its event brings.
func TestRoomDedup(t *testing.T) {
	at := time.UnixMilli(1_767_225_600_000)
	theirs := node.RoomMessageInfo{ID: "aa", From: "ana", Seq: 1, Text: "hi", SentAt: at}
	ownNoID := node.RoomMessageInfo{From: "me", Seq: 1, Mine: true, Text: "mine", SentAt: at}
	ownWithID := ownNoID
	ownWithID.ID = "bb"
	d := newRoomDedup()
	if !d.listed(theirs) || d.listed(ownNoID) {
		t.Fatal("listing: theirs is printed at once, ours without an ID is held")
	}
	if d.arrived(theirs) {
		t.Error("a listed message printed again from its event")
	}
	if d.arrived(ownNoID) || !d.arrived(ownWithID) || d.arrived(ownWithID) {
		t.Error("our held message is printed once, from its event")
	}
	if held := d.release(); len(held) != 0 {
		t.Errorf("released %+v after its event came", held)
	}
	next := node.RoomMessageInfo{From: "me", Seq: 2, Mine: true, Text: "mine again", SentAt: at}
	d.listed(next)
	if held := d.release(); len(held) != 1 || held[0].Text != "mine again" {
		t.Errorf("a held message whose event never came is released: %+v", held)
	}
	if next.ID = "dd"; d.arrived(next) {
		t.Error("a released message printed again when its event comes late")
	}
	if !d.arrived(node.RoomMessageInfo{ID: "cc", From: "ana", Seq: 2, Text: "new"}) {
		t.Error("a new message is printed")
	}
}

// Peer text cannot drive the terminal in room log.
func TestPrintRoomMessageEscapes(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	g.printRoomMessage(node.RoomMessageInfo{From: "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ", Name: "ana\u202e",
		Text: "look\x1b[2J\nhere", SentAt: time.Now()})
	if s := out.String(); strings.ContainsAny(s, "\x1b\u202e") || !strings.Contains(s, `look\x1b[2J\nhere`) || !strings.Contains(s, `ana\u202e`) {
		t.Fatalf("printed %q", s)
	}
}

// room log --follow says on stderr how many messages of whom are missing
// (history is asked for them), the name escaped.
func TestPrintRoomGap(t *testing.T) {
	var errOut bytes.Buffer
	g := &globals{stderr: &errOut}
	g.printRoomGap(node.RoomGapInfo{Author: "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ", Name: "ana\x1b[2J", From: 3, To: 5})
	g.printRoomGap(node.RoomGapInfo{Author: "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ", From: 7, To: 7})
	want := "(3 messages from ana\\x1b[2J missing; asking other members)\n" +
		"(1 message from " + termtext.ShortID("12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ") + " missing; asking other members)\n"
	if got := errOut.String(); got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}
