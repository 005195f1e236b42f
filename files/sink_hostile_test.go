package files

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kithnet/kith/protocols/invariants"

	"github.com/kithnet/kith/protocols"
)

// TestHostileSinkPaths receives manifests that skipped validation, into
// folders an attacker might have prepared: nothing outside the receive
// folder may be created or changed, and the validated path (OpenSink) must
// refuse them. The unvalidated path (openSink) shows that os.Root alone
// keeps them inside.
func TestHostileSinkPaths(t *testing.T) {
	tests := []struct {
		name      string
		entries   func(tr *invariants.Tree) []string // "path" a file, "path/" a folder
		names     []string
		overwrite bool
		setup     func(t *testing.T, tr *invariants.Tree)
	}{
		{"dot dot", fixed("d/", "d/../../x"), []string{"d"}, false, nil},
		{"dot dot inside", fixed("d/", "d/a/", "d/a/../../../outside/x"), []string{"d"}, false, nil},
		{"dot dot folder", fixed("d/", "d/../../outside/", "d/../../outside/y"), []string{"d"}, false, nil},
		{"stays inside by dot dot", fixed("d/", "d/../x"), []string{"d"}, false, nil},
		{"absolute", fixed("/etc/x"), []string{"x"}, false, nil},
		{"absolute inside", func(tr *invariants.Tree) []string {
			return []string{"d/", "d/" + tr.Outside + "/x"}
		}, []string{"d"}, false, nil},
		{"empty components", fixed("d/", "d//x"), []string{"d"}, false, nil},
		{"file with a child", fixed("f", "f/x"), []string{"f"}, false, nil},
		{"child before its folder", fixed("d/x", "d/"), []string{"d"}, false, nil},
		{"twice", fixed("a", "a"), []string{"a", "a (1)"}, false, nil},
		{"NUL", fixed("d/", "d/x\x00y"), []string{"d"}, false, nil},
		{"our merge marker", fixed("d/", "d/"+mergeMarker), []string{"d"}, false, nil},
		{"partial suffix", fixed("d/", "d/x"+PartialSuffix+"/", "d/x"+PartialSuffix+"/y"), []string{"d"}, false, nil},
		{"symlink out as final name", fixed("evil/", "evil/x"), []string{"evil"}, true, linkOut("evil")},
		{"symlink out as final name, no overwrite", fixed("evil/", "evil/x"), []string{"evil"}, false, linkOut("evil")},
		{"symlink out as file name", fixed("evil"), []string{"evil"}, true, linkOut("evil")},
		{"symlink out in a folder merged", fixed("d/", "d/evil/", "d/evil/x"), []string{"d"}, true, func(t *testing.T, tr *invariants.Tree) {
			mustDo(t, os.Mkdir(filepath.Join(tr.Root, "d"), 0o755))
			linkOut("d/evil")(t, tr)
		}},
		{"symlink out as partial file", fixed("f"), []string{"f"}, false, linkOut("f" + PartialSuffix)},
		{"symlink out as partial folder", fixed("d/", "d/x"), []string{"d"}, false, linkOut("d" + PartialSuffix)},
		{"symlink out inside the partial", fixed("d/", "d/evil/", "d/evil/x"), []string{"d"}, false, func(t *testing.T, tr *invariants.Tree) {
			mustDo(t, os.Mkdir(filepath.Join(tr.Root, "d"+PartialSuffix), 0o700))
			linkOut("d"+PartialSuffix+"/evil")(t, tr)
		}},
		{"symlink out inside the partial, no folder entry", fixed("d/", "d/evil/x"), []string{"d"}, false, func(t *testing.T, tr *invariants.Tree) {
			mustDo(t, os.Mkdir(filepath.Join(tr.Root, "d"+PartialSuffix), 0o700))
			linkOut("d"+PartialSuffix+"/evil")(t, tr)
		}},
		{"symlink to a file outside inside the partial", fixed("d/", "d/x"), []string{"d"}, false, func(t *testing.T, tr *invariants.Tree) {
			mustDo(t, os.Mkdir(filepath.Join(tr.Root, "d"+PartialSuffix), 0o700))
			mustDo(t, os.Symlink(filepath.Join(tr.Outside, "x"), filepath.Join(tr.Root, "d"+PartialSuffix, "x")))
		}},
	}
	for _, tt := range tests {
		for _, validated := range []bool{true, false} {
			name := tt.name
			if !validated {
				name += " unvalidated"
			}
			t.Run(name, func(t *testing.T) {
				tr := invariants.NewTree(t)
				if tt.setup != nil {
					tt.setup(t, tr)
				}
				before := invariants.Snapshot(t, tr.Top)
				err := receiveHostile(t, tr.Root, hostileManifest(tt.entries(tr)), tt.names, tt.overwrite, validated)
				t.Logf("error: %v", err)
				invariants.AssertUnchangedOutside(t, before, invariants.Snapshot(t, tr.Top), tr.Root)
				if validated && tt.setup == nil && err == nil {
					t.Error("OpenSink took a hostile manifest")
				}
			})
		}
	}
}

// receiveHostile runs a whole receive and returns its first error.
func receiveHostile(t *testing.T, dir string, m *protocols.Manifest, names []string, overwrite, validated bool) error {
	open := openSink
	if validated {
		open = OpenSink
	}
	s, err := open(dir, m, names, overwrite)
	if err != nil {
		return err
	}
	defer s.Close()
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for i, e := range m.Entries {
		for k, c := range chunksOf([]byte("hostile bytes")) {
			if !e.Dir {
				keep(s.WriteChunk(i, uint64(k), c))
			}
		}
	}
	keep(s.Sync())
	keep(s.Finalize())
	if first == nil {
		keep(s.Finalize())
	}
	return first
}

// hostileManifest builds entries without validating them: a path ending
// in "/" is a folder, any other a file holding "hostile bytes".
func hostileManifest(ps []string) *protocols.Manifest {
	m := &protocols.Manifest{}
	for _, p := range ps {
		if len(p) > 1 && p[len(p)-1] == '/' {
			m.Entries = append(m.Entries, dirEntry(p[:len(p)-1], 0o755))
		} else {
			m.Entries = append(m.Entries, fileEntry(p, []byte("hostile bytes"), 0o644))
		}
	}
	return m
}

func fixed(ps ...string) func(*invariants.Tree) []string {
	return func(*invariants.Tree) []string { return ps }
}

// linkOut makes name (relative to the receive root) a symlink to the
// folder outside it.
func linkOut(name string) func(t *testing.T, tr *invariants.Tree) {
	return func(t *testing.T, tr *invariants.Tree) {
		mustDo(t, os.Symlink(tr.Outside, filepath.Join(tr.Root, name)))
	}
}
