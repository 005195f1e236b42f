// Package termtext makes text from peers safe to print on a terminal and
// formats the small things both kith's commands and its chat UI show (short
// peer IDs, byte counts). It is shared by cmd/kith and cmd/kith/tui, which
// cannot import each other's code; it knows nothing of the network.
package termtext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Escape makes text from peers safe for a terminal: control and format
// characters (escape sequences, C1 controls, bidi overrides, ...) and
// invalid UTF-8 are shown escaped, Go-style (\x1b, \u202e), so no peer can
// move the cursor, clear the screen, write the clipboard (OSC 52) or hide
// text.
func Escape(s string) string {
	i := strings.IndexFunc(s, unsafe)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if unsafe(r) {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafe(r rune) bool {
	return r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.In(r, unicode.Cf)
}

// Lines is Escape for a message body shown on several lines: its line
// breaks (LF or CRLF) split it, everything else is escaped.
func Lines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return lines
}

// ShortID shortens a peer ID for people: its first 8 and last 6
// characters.
func ShortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

// Bytes writes n in binary units: "512 B", "1.5 KiB", "64.0 MiB".
func Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB", "PiB", "EiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
