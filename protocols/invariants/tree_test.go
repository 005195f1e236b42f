package invariants

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeT records failures instead of failing the real test.
type fakeT struct {
	testing.TB
	errors int
}

func (f *fakeT) Errorf(string, ...any) { f.errors++ }
func (f *fakeT) Helper()               {}

func TestAssertUnchangedOutside(t *testing.T) {
	tests := []struct {
		name   string
		change func(tr *Tree) error
		fails  bool
	}{
		{"nothing", func(*Tree) error { return nil }, false},
		{"inside root", func(tr *Tree) error {
			return os.WriteFile(filepath.Join(tr.Root, "a"), []byte("x"), 0o600)
		}, false},
		{"new file beside root", func(tr *Tree) error {
			return os.WriteFile(filepath.Join(tr.Top, "x"), nil, 0o600)
		}, true},
		{"file in home changed", func(tr *Tree) error {
			return os.WriteFile(filepath.Join(tr.Home, ".bashrc"), []byte("rm -rf\n"), 0o644)
		}, true},
		{"file outside removed", func(tr *Tree) error {
			return os.Remove(filepath.Join(tr.Outside, "x"))
		}, true},
		{"mode changed", func(tr *Tree) error {
			return os.Chmod(filepath.Join(tr.Outside, "x"), 0o600)
		}, true},
		{"root replaced by a symlink", func(tr *Tree) error {
			if err := os.Remove(tr.Root); err != nil {
				return err
			}
			return os.Symlink(tr.Outside, tr.Root)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTree(t)
			before := Snapshot(t, tr.Top)
			if err := tt.change(tr); err != nil {
				t.Fatal(err)
			}
			after := Snapshot(t, tr.Top)
			ft := &fakeT{TB: t}
			AssertUnchangedOutside(ft, before, after, tr.Root)
			if got := ft.errors > 0; got != tt.fails {
				t.Errorf("failed = %v (%d errors), want %v", got, ft.errors, tt.fails)
			}
		})
	}
}
