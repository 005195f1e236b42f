package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// clean makes text from peers safe for a terminal: control and format
// characters (escape sequences, C1 controls, bidi overrides, ...) are shown
// escaped, so no peer can move the cursor, clear the screen, write the
// clipboard (OSC 52) or hide text. It is cmd/kith's display, which this
// package cannot import.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == unicode.ReplacementChar, unicode.IsControl(r), unicode.In(r, unicode.Cf):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cleanLines is clean for a message body: its line breaks stay line breaks,
// everything else is escaped.
func cleanLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return lines
}

// shortID shortens a peer ID the way the other commands do.
func shortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

// clock is how a message's time shows: the local time of day, with the
// date when it is not today.
func clock(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	if t.Year() == now.Year() {
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// size formats a byte count for people.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
