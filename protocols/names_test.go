package protocols

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// hostileNames are entry paths CheckPath must reject, each with a part of
// the error message. The attacks: leaving the folder, naming devices and
// streams, hiding or reordering text on a terminal, and names that collide
// with kith's own files.
var hostileNames = []struct{ path, msg string }{
	// Leaving the folder.
	{"../x", `invalid path "../x": name ".." refers to a directory itself or its parent`},
	{"a/../../x", `name ".."`},
	{"a/..", `name ".."`},
	{"..", "refers to a directory itself or its parent"},
	{".", `invalid path ".": refers to`},
	{"a/./b", `name "."`},
	{"/etc/passwd", `is absolute (starts with "/")`},
	{"//host/x", "is absolute"},
	{`C:\x`, `contains ":" (Windows drive letters and file streams) at byte 1`},
	{"C:x", `contains ":"`},
	{`\\?\x`, "contains a backslash at byte 0"},
	{`a\..\x`, "contains a backslash"},
	{"a:stream", `contains ":"`},
	{"", "is empty"},
	{"a//b", `has an empty name ("//")`},
	{"a/", `ends with "/"`},
	{"/", "is absolute"},
	// Characters that hide, reorder or forge text.
	{"a\x00b", "contains control character U+0000 at byte 1"},
	{"a\nb", "control character U+000A"},
	{"\r", "control character U+000D"},
	{"\x1b[31mred", "control character U+001B at byte 0"},
	{"a\u0085b", "control character U+0085"},
	{"a\x7fb", "control character U+007F"},
	{"evil\u202etxt.exe", "format character U+202E at byte 4"},
	{"a\u200bb", "format character U+200B"},
	{"a\u2066b", "format character U+2066"},
	{"\ufeffa", "format character U+FEFF"},
	{"a\u00adb", "format character U+00AD"},
	{"a\u2028b", "invisible or unassigned character U+2028"},
	{"a\u2029b", "invisible or unassigned character U+2029"},
	{"a\u00a0b", "invisible or unassigned character U+00A0"},
	{"a\u3000b", "invisible or unassigned character U+3000"},
	{"\u3164", "invisible or unassigned character U+3164"},
	{"a\u115fb", "invisible or unassigned character U+115F"},
	{"a\ue000b", "invisible or unassigned character U+E000"},
	{"a\u0378b", "invisible or unassigned character U+0378"},
	{"a\ufffeb", "invisible or unassigned character U+FFFE"},
	{"a\U000e0041", "format character U+E0041"},
	{"a\xffb", "is not valid UTF-8"},
	{"a\xc0\xafb", "is not valid UTF-8"},
	{"\xed\xa0\x80", "is not valid UTF-8"}, // a surrogate
	// Characters Windows does not allow.
	{"a<b", `contains '<' (not allowed on Windows)`},
	{"a>b", `'>'`},
	{`a"b`, `'"'`},
	{"a|b", `'|'`},
	{"a?b", `'?'`},
	{"a*b", `'*'`},
	// Windows devices, and what Windows drops.
	{"CON", "is a device name on Windows"},
	{"con", "device name"},
	{"dir/Aux", "device name"},
	{"nul.txt", `invalid path "nul.txt": is a device name on Windows`},
	{"NUL.tar.gz", "device name"},
	{"con .txt", "device name"},
	{"PRN", "device name"},
	{"COM1", "device name"},
	{"com0", "device name"},
	{"LPT9.log", "device name"},
	{"lpt0", "device name"},
	{"COM\u00b9", "device name"},
	{"lpt\u00b2.txt", "device name"},
	{"COM\u00b3", "device name"},
	{"CONIN$", "device name"},
	{"conout$.x", "device name"},
	{"name.", `ends with "." (Windows drops it)`},
	{"...", `ends with "."`},
	{"dir./x", `name "dir." ends with "."`},
	{"name ", "ends with a space (Windows drops it)"},
	{" ", "ends with a space"},
	// kith's own temporary files.
	{"x.kith-partial", `ends with ".kith-partial", kith's suffix for files being received`},
	{"dir/X.KITH-PARTIAL", `name "X.KITH-PARTIAL" ends with ".kith-partial"`},
	{".kith-partial", ".kith-partial"},
	{"d.kith-partial/x", `name "d.kith-partial"`},
	{"x.\u212aith-partial", ".kith-partial"}, // KELVIN SIGN folds to k
	// Normalization and lengths.
	{"a\u0308", "is not in Unicode normalization form C (NFC)"},
	{"dir/Cafe\u0301.txt", "name \"Cafe\u0301.txt\" is not in Unicode normalization form C"},
	{"\u212b", "not in Unicode normalization form C"}, // ANGSTROM SIGN: NFC is U+00C5
	{strings.Repeat("n", 256), "is 256 bytes, more than the 255 allowed"},
	{strings.Repeat("n", 300), `"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"... (300 bytes)`},
	{"a/" + strings.Repeat("é", 128), "is 256 bytes"},
	{strings.Repeat("d/", 64) + "x", "has 65 names, more than the 64 allowed"},
	{strings.Repeat(strings.Repeat("n", 99)+"/", 10) + strings.Repeat("x", 25), "is 1025 bytes, more than the 1024 allowed"},
}

func TestHostileNames(t *testing.T) {
	for _, tc := range hostileNames {
		t.Run(quote(tc.path), func(t *testing.T) {
			err := CheckPath(tc.path)
			if err == nil {
				t.Fatalf("CheckPath(%q) accepted it", tc.path)
			}
			if !errors.Is(err, ErrMalformed) || ErrorCodeFor(err) != CodeMalformed {
				t.Fatalf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), "protocols: invalid path ") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
			checkPrintable(t, err.Error())
			if !strings.Contains(tc.path, "/") && !strings.Contains(tc.msg, "absolute") {
				if err := CheckName(tc.path); err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("CheckName(%q) = %v, want an error wrapping ErrMalformed", tc.path, err)
				}
			}
		})
	}
}

// checkPrintable fails when an error message holds a character that a
// terminal would not show as itself.
func checkPrintable(t *testing.T, msg string) {
	t.Helper()
	for i, r := range msg {
		if !unicode.IsPrint(r) {
			t.Fatalf("error message %q has %U at byte %d", msg, r, i)
		}
	}
}

var validPaths = []string{
	"a",
	"a b",
	" leading space",
	".hidden",
	"..two dots first",
	".config/app/settings.json",
	"grüße.txt",
	"Ä/ä.md", // different names in different directories
	"日本語/ファイル.md",
	"emoji 👋🏽.png",
	"\u2764\ufe0f.txt", // a variation selector is a mark, not a format character
	"نص عربي",
	"a.b.c",
	"CONSOLE",
	"COM10",
	"LPT",
	"nul_",
	"con-x.txt",
	"x.kith-partial.txt",
	"kith-partial",
	"100% done & (final) [1] {2} #3 ~4 '5' ,;=+!@$^`",
	"Ǆ",
	"\uFFFD",
	strings.Repeat("n", MaxNameBytes),
	strings.Repeat("é", MaxNameBytes/2) + "x",
	strings.Repeat("d/", MaxDepth-1) + "x",
	strings.Repeat(strings.Repeat("n", 99)+"/", 10) + strings.Repeat("x", 24), // 1024 bytes
}

func TestValidNames(t *testing.T) {
	for _, p := range validPaths {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
	if n := len(validPaths[len(validPaths)-1]); n != MaxPathBytes {
		t.Fatalf("the longest valid path is %d bytes, want %d", n, MaxPathBytes)
	}
}

func TestFoldPath(t *testing.T) {
	same := [][]string{
		{"Ä", "ä", "a\u0308", "A\u0308"},
		{"ß", "SS", "ss", "ẞ", "Ss"},
		{"dir/README.md", "DIR/readme.MD", "Dir/ReadMe.md"},
		{"k", "K", "\u212a"},
		{"Å", "å", "\u212b", "a\u030a"},
		{"ΣΑΣ", "σας", "σασ"},
		{"ſ", "s", "S"},
		{"Straße/Ä.txt", "STRASSE/a\u0308.TXT"},
	}
	for _, group := range same {
		want := FoldPath(group[0])
		for _, p := range group[1:] {
			if got := FoldPath(p); got != want {
				t.Errorf("FoldPath(%q) = %q, FoldPath(%q) = %q; want them equal", p, got, group[0], want)
			}
		}
		if again := FoldPath(want); again != want {
			t.Errorf("FoldPath(%q) = %q; FoldPath is not idempotent", want, again)
		}
		if !norm.NFC.IsNormalString(want) {
			t.Errorf("FoldPath(%q) = %q is not NFC", group[0], want)
		}
	}
	different := [][2]string{{"a", "b"}, {"i", "ı"}, {"a/b", "a b"}, {"é", "e"}, {"ss", "s"}}
	for _, d := range different {
		if FoldPath(d[0]) == FoldPath(d[1]) {
			t.Errorf("FoldPath(%q) == FoldPath(%q) = %q", d[0], d[1], FoldPath(d[0]))
		}
	}
}

// TestUnicodeVersion pins the Unicode version the name rules were written
// against: which code points are assigned (unicode.IsPrint), NFC and case
// folding all follow it, so two kith versions on different Unicode versions
// may disagree about a name. When a Go or golang.org/x/text upgrade moves it,
// review the rules in the package documentation ("File transfer", Paths),
// then update this test and the documentation.
func TestUnicodeVersion(t *testing.T) {
	const want = "15.0.0"
	for name, v := range map[string]string{"unicode": unicode.Version, "x/text/unicode/norm": norm.Version,
		"x/text/cases": cases.UnicodeVersion} {
		if v != want {
			t.Errorf("%s is Unicode %s; the specification says %s", name, v, want)
		}
	}
}

func TestQuote(t *testing.T) {
	cases := map[string]string{
		"plain":                         `"plain"`,
		"\x1b[2J\u202e\n":               `"\x1b[2J\u202e\n"`,
		strings.Repeat("é", 40):         `"` + strings.Repeat("é", 32) + `"... (80 bytes)`,
		"x" + strings.Repeat("é", 40):   `"x` + strings.Repeat("é", 31) + `"... (81 bytes)`,
		strings.Repeat("\xff", 70):      `"` + strings.Repeat(`\xff`, 64) + `"... (70 bytes)`,
		strings.Repeat("a", 64):         `"` + strings.Repeat("a", 64) + `"`,
		strings.Repeat("a", 63) + "€xx": `"` + strings.Repeat("a", 63) + `"... (68 bytes)`,
	}
	for in, want := range cases {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
