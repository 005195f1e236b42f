package protocols

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// FuzzCheckPath checks what an accepted path promises to the code that
// writes it to disk: it is local (filepath.IsLocal) and already clean, has no
// control or format character, backslash or colon, is NFC, and its FoldPath
// is stable. Every rejection wraps ErrMalformed.
func FuzzCheckPath(f *testing.F) {
	for _, tc := range hostileNames {
		f.Add(tc.path)
	}
	for _, p := range validPaths {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := CheckPath(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("CheckPath(%q) = %v, which does not wrap ErrMalformed", p, err)
			}
			return
		}
		checkAcceptedPath(t, p)
	})
}

func checkAcceptedPath(t *testing.T, p string) {
	t.Helper()
	if !filepath.IsLocal(p) || path.Clean(p) != p || strings.ContainsAny(p, `\:`) {
		t.Fatalf("CheckPath accepted %q: not local, not clean, or with a backslash or colon", p)
	}
	for i, r := range p {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("CheckPath accepted %q with %U at byte %d", p, r, i)
		}
	}
	if !norm.NFC.IsNormalString(p) {
		t.Fatalf("CheckPath accepted %q, which is not NFC", p)
	}
	for name := range strings.SplitSeq(p, "/") {
		if err := CheckName(name); err != nil {
			t.Fatalf("CheckPath accepted %q, but CheckName(%q): %v", p, name, err)
		}
	}
	fold := FoldPath(p)
	if again := FoldPath(fold); again != fold {
		t.Fatalf("FoldPath(%q) = %q, but FoldPath(%q) = %q", p, fold, fold, again)
	}
}
