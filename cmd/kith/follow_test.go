package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kithnet/kith/node"
)

func TestTransferLabel(t *testing.T) {
	tests := []struct {
		t    node.TransferInfo
		want string
	}{
		{node.TransferInfo{Direction: "out", Names: []string{"a.pdf"}, PeerName: "ben"}, "a.pdf to ben"},
		{node.TransferInfo{Direction: "out", Names: []string{"a", "b"}, Peer: "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ"}, "2 items to 12D3KooW…2221zQ"},
		{node.TransferInfo{Direction: "in", Files: 1, PeerName: "ana"}, "1 file from ana"},
		{node.TransferInfo{Direction: "in", Files: 3, Ticket: true}, "3 files"},
		{node.TransferInfo{Direction: "out", Names: []string{"x"}, Ticket: true}, "x"},
	}
	for _, tt := range tests {
		if got := transferLabel(tt.t); got != tt.want {
			t.Errorf("transferLabel(%+v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

// A rejected offer exits 5, a failed transfer 1; peer text is escaped.
func TestEndedExitCodes(t *testing.T) {
	if err := ended(node.TransferInfo{State: "done"}); err != nil {
		t.Fatal(err)
	}
	err := ended(node.TransferInfo{ID: "0123456789abcdef", State: "rejected", PeerName: "ben"})
	if exitCode(err) != exitRefused || err.Error() != "ben rejected the offer" {
		t.Errorf("rejected: %v (exit %d)", err, exitCode(err))
	}
	err = ended(node.TransferInfo{ID: "0123456789abcdef", State: "failed", Error: "disk\x1b[2J full"})
	if exitCode(err) != exitFailure || err.Error() != `transfer 01234567 failed: disk\x1b[2J full` {
		t.Errorf("failed: %q (exit %d)", err, exitCode(err))
	}
}

// The table and the details escape names from peers; show lists every
// entry at its destination.
func TestPrintTransfersEscapes(t *testing.T) {
	hostile := "x\x1b]0;pwned\x07.txt"
	in := node.TransferInfo{
		ID: "0123456789abcdef0123456789abcdef", Peer: "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ",
		PeerName: "ana\u202e", Direction: "in", State: "offered", Files: 2, Bytes: 2048, Dir: "/home/ben/Downloads",
		Entries: []node.EntryInfo{{Path: "photos", Dir: true}, {Path: "photos/" + hostile, Size: 1024}, {Path: "b.txt", Size: 1024}},
	}
	var out bytes.Buffer
	printTransfers(&out, []node.TransferInfo{in})
	printTransfer(&out, in)
	s := out.String()
	if strings.ContainsAny(s, "\x1b\x07\u202e") {
		t.Fatalf("control characters printed: %q", s)
	}
	for _, want := range []string{
		"01234567", `ana\u202e`, "/home/ben/Downloads/photos/\n",
		`/home/ben/Downloads/photos/x\x1b]0;pwned\a.txt  (1.0 KiB)`, "/home/ben/Downloads/b.txt  (1.0 KiB)",
		"kith transfers accept 01234567",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
