package termtext

import (
	"slices"
	"strings"
	"testing"
)

// TestHostileEscape: nothing a peer writes reaches the terminal as a
// control: escape sequences (CSI, OSC 52 clipboard writes), C1 controls,
// bidi overrides, carriage returns, backspaces, invalid UTF-8.
func TestHostileEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcödé, 漢字, 🙂", "plain text, ünïcödé, 漢字, 🙂"},
		{"hi\x1b[2J\x1b[H", `hi\x1b[2J\x1b[H`},
		{"\x1b]52;c;cm0gLXJmIH4=\x07", `\x1b]52;c;cm0gLXJmIH4=\a`},
		{"\u009b31m", `\u009b31m`},
		{"abc\u202eevil", `abc\u202eevil`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"over\rwrite\x08!", `over\rwrite\b!`},
		{"tab\tnew\nline", `tab\tnew\nline`},
		{"bad \xff utf8", `bad \ufffd utf8`},
		{"", ""},
	}
	for _, tt := range tests {
		got := Escape(tt.in)
		if got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\x1b\x07\r\b\n\u009b\u202e\u200b") {
			t.Errorf("Escape(%q) still carries a control: %q", tt.in, got)
		}
	}
}

func TestLines(t *testing.T) {
	got := Lines("one\r\ntwo\x1b[1A\nthree\rfour")
	want := []string{"one", `two\x1b[1A`, `three\rfour`}
	if !slices.Equal(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
}

func TestShortID(t *testing.T) {
	id := "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ"
	if got := ShortID(id); got != "12D3KooW…2221zQ" {
		t.Errorf("ShortID = %q", got)
	}
	if got := ShortID("short"); got != "short" {
		t.Errorf("ShortID(short) = %q", got)
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{64 << 20, "64.0 MiB"}, {3<<30 + 1<<29, "3.5 GiB"}, {2 << 40, "2.0 TiB"}, {3 << 60, "3.0 EiB"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
