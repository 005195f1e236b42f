package files

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kithnet/kith/protocols"
)

// receiveAll plans names, writes every chunk of c into dir and syncs; it
// returns the open Sink and the names.
func receiveAll(t *testing.T, c sinkCase, dir string, overwrite bool) (*Sink, []string) {
	t.Helper()
	names, err := PlanNames(dir, c.m, overwrite)
	mustDo(t, err)
	s, err := OpenSink(dir, c.m, names, overwrite)
	mustDo(t, err)
	t.Cleanup(func() { s.Close() })
	c.write(t, s, c.chunks(6), nil)
	mustDo(t, s.Sync())
	return s, names
}

func TestSinkOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing func(t *testing.T, dir string)
		conflict string // the error Finalize must report, if any
		after    func(t *testing.T, dir string)
	}{
		{"nothing there", func(*testing.T, string) {}, "", nil},
		{"files and a folder", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string][]byte{
				"a.txt": []byte("old a"), "album/x.bin": []byte("old x"),
				"album/old.txt": []byte("kept"), "album/sub/other": []byte("kept too"),
			})
		}, "", func(t *testing.T, dir string) {
			assertFile(t, filepath.Join(dir, "album/old.txt"), []byte("kept"), 0o644)
			assertFile(t, filepath.Join(dir, "album/sub/other"), []byte("kept too"), 0o644)
		}},
		{"symlink where a file goes", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string][]byte{"target": []byte("untouched")})
			mustDo(t, os.Symlink("target", filepath.Join(dir, "a.txt")))
		}, "", func(t *testing.T, dir string) {
			assertFile(t, filepath.Join(dir, "target"), []byte("untouched"), 0o644)
		}},
		{"folder where a file goes", func(t *testing.T, dir string) {
			mustDo(t, os.MkdirAll(filepath.Join(dir, "a.txt"), 0o755))
		}, `"a.txt"`, nil},
		{"file where the folder goes", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string][]byte{"album": []byte("a file")})
		}, `"album"`, nil},
		{"folder where a file inside goes", func(t *testing.T, dir string) {
			mustDo(t, os.MkdirAll(filepath.Join(dir, "album/sub/y"), 0o755))
		}, `"album/sub/y"`, nil},
		{"file where a folder inside goes", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string][]byte{"album/sub": []byte("a file")})
		}, `"album/sub"`, nil},
		{"symlink where a folder inside goes", func(t *testing.T, dir string) {
			mustDo(t, os.MkdirAll(filepath.Join(dir, "album/elsewhere"), 0o755))
			mustDo(t, os.Symlink("elsewhere", filepath.Join(dir, "album/sub")))
		}, `"album/sub"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dir := albumCase(t), t.TempDir()
			tt.existing(t, dir)
			s, names := receiveAll(t, c, dir, true)
			err := s.Finalize()
			if tt.conflict != "" {
				if err == nil || !strings.Contains(err.Error(), tt.conflict) {
					t.Fatalf("Finalize: %v, want a conflict on %s", err, tt.conflict)
				}
				checkPartialIntact(t, c, dir, names, s, strings.Trim(tt.conflict, `"`))
				return
			}
			mustDo(t, err)
			c.check(t, dir, names, "album", "album/sub")
			assertNoPartial(t, dir)
			if tt.after != nil {
				tt.after(t, dir)
			}
		})
	}
}

// checkPartialIntact asserts that after a conflict every partial of an
// item not in place still holds all its data, and that removing the
// conflicting path lets Finalize finish.
func checkPartialIntact(t *testing.T, c sinkCase, dir string, names []string, s *Sink, conflict string) {
	t.Helper()
	for i, it := range s.items {
		if it.state == itemDone {
			continue
		}
		for _, e := range s.entries(i) {
			if en := c.m.Entries[e]; !en.Dir {
				got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.partialPath(e))))
				if err != nil || string(got) != string(c.data[en.Path]) {
					t.Errorf("partial of %s damaged (%v)", en.Path, err)
				}
			}
		}
	}
	mustDo(t, os.RemoveAll(filepath.Join(dir, conflict)))
	mustDo(t, s.Finalize())
	c.check(t, dir, names, "album", "album/sub")
	assertNoPartial(t, dir)
}

func TestSinkMergeCrash(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	writeFiles(t, dir, map[string][]byte{"album/x.bin": []byte("old x"), "album/old.txt": []byte("kept")})
	s, names := receiveAll(t, c, dir, true)
	// Finalize as far as the first moved file of the folder, then crash.
	mustDo(t, s.seal(2))
	mustDo(t, s.checkMerge(2))
	mustDo(t, s.markMerging(2))
	mustDo(t, s.mergeEntry(2, s.items[2].members[0]))
	mustDo(t, s.Close())

	s, err := OpenSink(dir, c.m, names, true)
	mustDo(t, err)
	defer s.Close()
	if s.items[2].state != itemMerging {
		t.Errorf("folder state %d after the crash, want merging", s.items[2].state)
	}
	if err := s.WriteChunk(3, 0, c.chunk(sinkChunk{3, 0})); err == nil {
		t.Error("WriteChunk into a folder being merged: no error")
	}
	mustDo(t, s.Finalize())
	c.check(t, dir, names, "album")
	assertNoPartial(t, dir)
	assertFile(t, filepath.Join(dir, "album/old.txt"), []byte("kept"), 0o644)
}

func TestSinkEmptyItemsWithoutPartial(t *testing.T) {
	// Items with no data are created by Finalize even if their partials
	// vanished (or OpenSink found them in place).
	c := newSinkCase(t, map[string][]byte{"e": {}, "d/f": {}},
		protocols.Entry{Path: "e", Mode: 0o644}, dirEntry("d", 0o755), protocols.Entry{Path: "d/f", Mode: 0o644})
	dir := t.TempDir()
	s, err := OpenSink(dir, c.m, []string{"e", "d"}, false)
	mustDo(t, err)
	defer s.Close()
	mustDo(t, os.RemoveAll(filepath.Join(dir, "d"+PartialSuffix)))
	mustDo(t, s.Finalize())
	c.check(t, dir, []string{"e", "d"})
	assertNoPartial(t, dir)
}
