package invariants

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kithnet/kith/protocols"
)

// Sum is a SHA-256 digest of a file's content.
type Sum [sha256.Size]byte

func (s Sum) String() string { return hex.EncodeToString(s[:8]) }

// SumFile hashes the file at path (N1: computed here, from the file, not
// taken from a manifest).
func SumFile(t testing.TB, path string) Sum {
	t.Helper()
	s, err := sumFile(path)
	if err != nil {
		t.Fatalf("invariants: %v", err)
	}
	return s
}

func sumFile(path string) (Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sum{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return Sum{}, err
	}
	return Sum(h.Sum(nil)), nil
}

// SumTree hashes every regular file under root (root may be a file): its
// slash path relative to root's parent (so a file sent as "a.bin" is
// "a.bin", a folder "docs" gives "docs/x.txt") → its Sum.
func SumTree(t testing.TB, root string) map[string]Sum {
	t.Helper()
	out := map[string]Sum{}
	base := filepath.Dir(root)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err == nil {
			out[filepath.ToSlash(rel)], err = sumFile(p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("invariants: hash %s: %v", root, err)
	}
	return out
}

// SameFile fails t unless got holds the same bytes as want (N1).
func SameFile(t testing.TB, want, got string) {
	t.Helper()
	if w, g := SumFile(t, want), SumFile(t, got); w != g {
		t.Errorf("invariants: N1: %s (sha256 %s) differs from the source %s (sha256 %s)", got, g, want, w)
	}
}

// SameTree fails t unless the item received at got holds exactly the
// regular files of the item sent from want, byte for byte (N1).
func SameTree(t testing.TB, want, got string) {
	t.Helper()
	w, g := SumTree(t, want), SumTree(t, got)
	rel := func(m map[string]Sum, root string) map[string]Sum {
		out := map[string]Sum{}
		prefix := filepath.Base(root)
		for p, s := range m {
			out[strings.TrimPrefix(p, prefix)] = s
		}
		return out
	}
	w, g = rel(w, want), rel(g, got)
	for _, p := range slices.Sorted(maps.Keys(w)) {
		switch gs, ok := g[p]; {
		case !ok:
			t.Errorf("invariants: N1: %s%s was sent but not received", filepath.Base(got), p)
		case gs != w[p]:
			t.Errorf("invariants: N1: %s%s differs from what was sent", filepath.Base(got), p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[p]; !ok {
			t.Errorf("invariants: N1: %s%s was received but never sent", filepath.Base(got), p)
		}
	}
}

// IsPartial reports whether slash path p is, or is inside, a partial
// download (a component ends in protocols.PartialSuffix).
func IsPartial(p string) bool {
	for c := range strings.SplitSeq(p, "/") {
		if strings.HasSuffix(c, protocols.PartialSuffix) {
			return true
		}
	}
	return false
}

// CheckFinals scans the receive folder dir, at any moment of a transfer or
// after a crash, and fails t for every regular file under a final name
// (not inside a *.kith-partial) that is not in want or whose content is
// not want's (N2): a partial is never presented as complete. want maps
// slash paths relative to dir to the Sum they must hold once complete (see
// SumTree); a file of want may be missing (not complete yet). It returns
// the partials it saw, as slash paths relative to dir.
func CheckFinals(t testing.TB, dir string, want map[string]Sum) (partials []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(d.Name(), protocols.PartialSuffix) {
			partials = append(partials, rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		w, ok := want[rel]
		if !ok {
			t.Errorf("invariants: N2: %s is under a final name but is no file that was sent complete", rel)
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("invariants: N2: %s is a %v, not a regular file", rel, d.Type())
			return nil
		}
		if g, err := sumFile(p); err != nil {
			return err
		} else if g != w {
			t.Errorf("invariants: N2: %s is under its final name with content that is not what was sent", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("invariants: scan %s: %v", dir, err)
	}
	return partials
}
