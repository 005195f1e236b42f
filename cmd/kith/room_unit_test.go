package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/node"
)

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		want    string // "" means refused
	}{
		{"correct horse\n", "correct horse"},
		{"correct horse\r\n", "correct horse"},
		{"correct horse", "correct horse"},
		{"two lines\nkept\n", "two lines\nkept"},
		{"\n", ""},
		{"", ""},
		{"short\n", ""},
		{strings.Repeat("x", 1025), ""},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, "secret")
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, from := range []string{path, "-"} {
			got, err := secretFromFile(from, strings.NewReader(tt.content))
			switch {
			case tt.want == "" && (err == nil || exitCode(err) != exitUsage):
				t.Errorf("#%d from %s: %q, %v; want a usage error", i, from, got, err)
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Errorf("#%d from %s: %q, %v; want %q", i, from, got, err, tt.want)
			case err != nil && strings.Contains(err.Error(), "short"):
				t.Errorf("#%d: the error shows the secret: %v", i, err)
			}
		}
	}
	if _, err := secretFromFile(filepath.Join(dir, "missing"), nil); exitCode(err) != exitUsage {
		t.Errorf("a missing file: %v", err)
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
