package main

import (
	"strconv"
	"strings"
	"unicode"
)

// display makes text from peers safe for a terminal: control and format
// characters (escape sequences, bidi overrides, ...) are shown escaped, so
// no peer can move the cursor, clear the screen or hide text.
func display(s string) string {
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
