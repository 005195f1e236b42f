package protocols

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits of a manifest entry's path (section "File transfer", Paths).
const (
	// MaxPathBytes is the most bytes of an entry's path.
	MaxPathBytes = 1024
	// MaxNameBytes is the most bytes of one component of a path.
	MaxNameBytes = 255
	// MaxDepth is the most components of a path.
	MaxDepth = 64
)

// PartialSuffix ends the name of a file kith is receiving; no received name
// may end in it (in any case).
const PartialSuffix = ".kith-partial"

// invalidError is an error about received data that is not a frame (a path,
// a manifest): its text says what the data is and what is wrong with it, and
// it wraps the sentinel that ErrorCodeFor maps to the code to answer with.
type invalidError struct {
	kind error // ErrMalformed, ErrFrameTooLarge or ErrUnsupportedVersion
	msg  string
}

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return e.kind }

// CheckPath reports whether p may be the path of a manifest entry: one
// relative, slash-separated path of at most MaxDepth components and
// MaxPathBytes bytes, each component a name CheckName accepts. It rejects,
// never repairs: "a//b", "./a" and "a/" are errors, not "a/b" and "a". The
// error wraps ErrMalformed, quotes the offending name with Go escapes (so it
// is safe to print) and says what is wrong, for example
// `protocols: invalid path "a/../x": name ".." refers to a directory itself or its parent`.
func CheckPath(p string) error {
	if why := pathProblem(p); why != "" {
		return &invalidError{ErrMalformed, "protocols: invalid path " + quote(p) + ": " + why}
	}
	return nil
}

// CheckName reports whether name may be one component of an entry's path.
// The rules (the package documentation lists them) keep a received name from
// leaving the folder it is received into, from naming a device, stream or
// special file on Windows, macOS or Linux, from hiding characters from the
// user, and from clashing with kith's own temporary files. The error wraps
// ErrMalformed, like CheckPath's.
func CheckName(name string) error {
	if why := nameProblem(name); why != "" {
		return &invalidError{ErrMalformed, "protocols: invalid name " + quote(name) + ": " + why}
	}
	return nil
}

// FoldPath returns the key under which two paths collide on a
// case-insensitive or normalizing file system (Windows, macOS): the path's
// canonical decomposition, case-folded with full Unicode case folding,
// recomposed (NFC). "Ä", "ä" and "a\u0308" have one key, as do "ß", "SS" and
// "ss". A manifest holds no two entries with one key.
func FoldPath(p string) string {
	return norm.NFC.String(strings.Map(cherokeeCapital, cases.Fold().String(norm.NFD.String(p))))
}

// cherokeeCapital maps Cherokee small letters to their capitals. Unicode
// folds Cherokee to the capitals, but x/text's Fold maps some capitals to
// small letters and those small letters back, so folding alone is not
// idempotent (FuzzCheckPath found "Ꮯ" and "ꮯ"); the capital is the key.
func cherokeeCapital(r rune) rune {
	switch {
	case r >= 0xAB70 && r <= 0xABBF: // Cherokee Supplement: small letters
		return r - 0xAB70 + 0x13A0
	case r >= 0x13F8 && r <= 0x13FD: // small ye to small mv
		return r - 8
	}
	return r
}

// pathProblem says what is wrong with an entry's path, or "" when nothing is.
func pathProblem(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > MaxPathBytes:
		return fmt.Sprintf("is %d bytes, more than the %d allowed", len(p), MaxPathBytes)
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	case p[0] == '/':
		return `is absolute (starts with "/")`
	case p[len(p)-1] == '/':
		return `ends with "/"`
	case strings.Contains(p, "//"):
		return `has an empty name ("//")`
	}
	if n := strings.Count(p, "/") + 1; n > MaxDepth {
		return fmt.Sprintf("has %d names, more than the %d allowed", n, MaxDepth)
	}
	if !strings.Contains(p, "/") {
		return nameProblem(p)
	}
	for name := range strings.SplitSeq(p, "/") {
		if why := nameProblem(name); why != "" {
			return "name " + quote(name) + " " + why
		}
	}
	return ""
}

// nameProblem says what is wrong with one component of a path, or "" when
// nothing is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("is %d bytes, more than the %d allowed", len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case name == "." || name == "..":
		return "refers to a directory itself or its parent"
	}
	if why := runeProblem(name); why != "" {
		return why
	}
	switch {
	case strings.HasSuffix(name, "."):
		return `ends with "." (Windows drops it)`
	case strings.HasSuffix(name, " "):
		return "ends with a space (Windows drops it)"
	case isWindowsDevice(name):
		return "is a device name on Windows"
	case isPartialName(name):
		return `ends with "` + PartialSuffix + `", kith's suffix for files being received`
	case !norm.NFC.IsNormalString(name):
		return "is not in Unicode normalization form C (NFC)"
	}
	return ""
}

// isPartialName reports whether name ends in PartialSuffix under FoldPath,
// as on a file system that ignores case ("X.KITH-PARTIAL", or with a KELVIN
// SIGN for the k). No character folds to '.', and nothing composes across
// one, so only the part from the last '.' on needs folding; and it needs it
// only when it is short enough to fold to PartialSuffix (13 characters of at
// most 4 bytes).
func isPartialName(name string) bool {
	i := strings.LastIndexByte(name, '.')
	return i >= 0 && len(name)-i <= 4*len(PartialSuffix) && FoldPath(name[i:]) == PartialSuffix
}

// runeProblem finds the first character a name must not contain.
func runeProblem(name string) string {
	for i, r := range name {
		var what string
		switch {
		case r == '/':
			what = "a slash"
		case r == '\\':
			what = "a backslash"
		case r == ':':
			what = `":" (Windows drive letters and file streams)`
		case strings.ContainsRune(`<>"|?*`, r):
			what = strconv.QuoteRune(r) + " (not allowed on Windows)"
		case unicode.IsControl(r):
			what = fmt.Sprintf("control character %U", r)
		case unicode.Is(unicode.Cf, r):
			what = fmt.Sprintf("format character %U", r)
		case !unicode.IsPrint(r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
			what = fmt.Sprintf("invisible or unassigned character %U", r)
		default:
			continue
		}
		return fmt.Sprintf("contains %s at byte %d", what, i)
	}
	return ""
}

// isWindowsDevice reports whether Windows opens a device for name: CON, PRN,
// AUX, NUL, COM0 to COM9, LPT0 to LPT9 (also with the digits ¹ ² ³), CONIN$
// and CONOUT$, in any case, also followed by spaces or by anything after a
// dot ("NUL.txt", "con .tar.gz"). It is path/filepath's IsLocal rule on
// Windows, with COM0 and LPT0 added.
func isWindowsDevice(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.TrimRight(base, " ")
	switch asciiUpper(base) {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) < 4 || (asciiUpper(base[:3]) != "COM" && asciiUpper(base[:3]) != "LPT") {
		return false
	}
	switch base[3:] {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "\u00b9", "\u00b2", "\u00b3":
		return true
	}
	return false
}

// asciiUpper maps a to z in s to A to Z and leaves every other byte alone, as
// Windows does when it matches device names.
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// quote quotes s with Go escapes for an error message, so that a hostile
// name cannot forge or hide text; a long s is cut at 64 bytes and marked.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > max-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}
