package protocols

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrorHint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"disk full", "disk full"},
		{"a\nb\x1b[31mc\u202e", "a b [31mc "},
		{strings.Repeat("é", 200), strings.Repeat("é", MaxDMErrorMessage/2)},
	} {
		got := ErrorHint(tc.in)
		if got != tc.want {
			t.Errorf("ErrorHint(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := checkErrorMessage(got); err != nil || !utf8.ValidString(got) {
			t.Errorf("ErrorHint(%q) = %q does not fit an Error frame: %v", tc.in, got, err)
		}
	}
}
