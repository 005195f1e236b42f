package invariants

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tree is a temporary directory tree for receive tests:
//
//	Top/
//	  home/        a fake $HOME (HOME points here) with dotfiles
//	  outside/     a sibling with files, the target of hostile symlinks
//	  recv-sibling/  a directory whose name extends Root's
//	  recv/        Root, the receive folder (empty)
type Tree struct {
	Top     string
	Root    string
	Home    string
	Outside string
}

// NewTree builds a Tree under t.TempDir and points $HOME at its fake home
// (so the test cannot be parallel).
func NewTree(t testing.TB) *Tree {
	t.Helper()
	top := t.TempDir()
	tr := &Tree{
		Top:     top,
		Root:    filepath.Join(top, "recv"),
		Home:    filepath.Join(top, "home"),
		Outside: filepath.Join(top, "outside"),
	}
	files := map[string]string{
		"home/.bashrc":                 "echo hi\n",
		"home/.ssh/authorized_keys":    "ssh-ed25519 AAAA canary\n",
		"home/Downloads/keep.txt":      "canary\n",
		"outside/x":                    "canary x\n",
		"outside/etc/passwd":           "root:x:0:0::/root:/bin/sh\n",
		"recv-sibling/canary.txt":      "canary\n",
		"recv-sibling/sub/canary2.txt": "canary\n",
	}
	for name, body := range files {
		p := filepath.Join(top, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(tr.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", tr.Home)
	return tr
}

// Entry is what a Snapshot records of one path (never following links).
type Entry struct {
	Mode  fs.FileMode
	Inode uint64
	Size  int64
	MTime time.Time
	Link  string   // a symlink's target
	Sum   [32]byte // SHA-256 of a regular file's first MiB
}

// Entries maps every path under a root (itself included) to its Entry.
type Entries map[string]Entry

// Snapshot records every path under root.
func Snapshot(t testing.TB, root string) Entries {
	t.Helper()
	s := Entries{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: info.Mode(), Size: info.Size(), MTime: info.ModTime()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.Inode = uint64(st.Ino)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.Link, err = os.Readlink(p)
		case info.Mode().IsRegular():
			e.Sum, err = sumHead(p)
		}
		s[p] = e
		return err
	})
	if err != nil {
		t.Fatalf("invariants: snapshot %s: %v", root, err)
	}
	return s
}

func sumHead(p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, _ := f.ReadAt(buf, 0)
	return sha256.Sum256(buf[:n]), nil
}

// AssertUnchangedOutside fails t for every path outside allowedRoot that
// was added, removed or changed between before and after. allowedRoot itself
// may change (its mtime does when entries are added), but not be replaced.
func AssertUnchangedOutside(t testing.TB, before, after Entries, allowedRoot string) {
	t.Helper()
	inside := func(p string) bool {
		return strings.HasPrefix(p, allowedRoot+string(filepath.Separator))
	}
	var bad []string
	for p, a := range after {
		if inside(p) {
			continue
		}
		b, ok := before[p]
		switch {
		case !ok:
			bad = append(bad, "new: "+p)
		case p == allowedRoot:
			if a.Inode != b.Inode || a.Mode != b.Mode {
				bad = append(bad, "replaced: "+p)
			}
		case a != b:
			bad = append(bad, "changed: "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && !inside(p) {
			bad = append(bad, "removed: "+p)
		}
	}
	sort.Strings(bad)
	for _, s := range bad {
		t.Errorf("invariants: outside %s: %s", allowedRoot, s)
	}
}

// AssertNothingUnder fails t unless root is empty and was not replaced
// since before (a Snapshot of root): N5, a rejected offer writes zero bytes
// and makes zero inodes under the receive root.
func AssertNothingUnder(t testing.TB, before Entries, root string) {
	t.Helper()
	after := Snapshot(t, root)
	for p := range after {
		if p != root {
			t.Errorf("invariants: N5: %s written under the receive root", p)
		}
	}
	if a, b := after[root], before[root]; a.Inode != b.Inode || a.Mode != b.Mode {
		t.Errorf("invariants: N5: the receive root %s was replaced", root)
	}
}
