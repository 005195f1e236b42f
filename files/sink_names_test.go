package files

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kithnet/kith/protocols/invariants"

	"github.com/kithnet/kith/protocols"
)

func TestPlanNames(t *testing.T) {
	long := strings.Repeat("é", 120) + ".txt" // 244 bytes: too long with the suffix
	existing := []string{"a.txt", "a (1).txt", "b.txt" + PartialSuffix, "album/", ".bashrc", "noext",
		"t.tar.gz", "photos.2024/", "c.txt (1)" + PartialSuffix, "d.txt", "e" + PartialSuffix + "/"}
	tests := []struct {
		name      string
		items     []protocols.Entry
		overwrite bool
		want      []string
	}{
		{"free names", ents("new.txt", "dir/"), false, []string{"new.txt", "dir"}},
		{"taken file", ents("a.txt"), false, []string{"a (2).txt"}},
		{"partial exists", ents("b.txt"), false, []string{"b (1).txt"}},
		{"taken folder", ents("album/"), false, []string{"album (1)"}},
		{"folder where a file is", ents("a.txt/"), false, []string{"a.txt (1)"}},
		{"dotfile", ents(".bashrc"), false, []string{".bashrc (1)"}},
		{"no extension", ents("noext"), false, []string{"noext (1)"}},
		{"last extension", ents("t.tar.gz"), false, []string{"t.tar (1).gz"}},
		{"folder with a dot", ents("photos.2024/"), false, []string{"photos.2024 (1)"}},
		{"partial of a folder", ents("e/"), false, []string{"e (1)"}},
		{"two items, one name", ents("d.txt", "d (1).txt"), false, []string{"d (1).txt", "d (1) (1).txt"}},
		{"overwrite file", ents("a.txt"), true, []string{"a.txt"}},
		{"overwrite folder", ents("album/"), true, []string{"album"}},
		{"overwrite, partial exists", ents("b.txt"), true, []string{"b (1).txt"}},
		{"overwrite skips taken numbers", ents("e/"), true, []string{"e (1)"}},
		{"too long", ents(long), false, []string{strings.Repeat("é", 119) + ".txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range existing {
				if strings.HasSuffix(p, "/") {
					mustDo(t, os.Mkdir(filepath.Join(dir, p), 0o755))
				} else {
					writeFiles(t, dir, map[string][]byte{p: nil})
				}
			}
			before := invariants.Snapshot(t, dir)
			got, err := PlanNames(dir, &protocols.Manifest{Entries: tt.items}, tt.overwrite)
			mustDo(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names %q, want %q", got, tt.want)
			}
			for _, n := range got {
				if len(n+PartialSuffix) > protocols.MaxNameBytes || protocols.CheckName(n) != nil {
					t.Errorf("name %q cannot be used", n)
				}
			}
			// Planning writes nothing (N5).
			invariants.AssertUnchangedOutside(t, before, invariants.Snapshot(t, dir), filepath.Join(dir, "nothing"))
		})
	}
}

// ents builds top-level entries: a path ending in "/" is a folder.
func ents(ps ...string) []protocols.Entry {
	var es []protocols.Entry
	for _, p := range ps {
		name, dir := strings.CutSuffix(p, "/")
		es = append(es, protocols.Entry{Path: name, Dir: dir})
	}
	return es
}

func TestNumbered(t *testing.T) {
	tests := []struct {
		name string
		k    int
		dir  bool
		want string
	}{
		{"a.txt", 0, false, "a.txt"},
		{"a.txt", 3, false, "a (3).txt"},
		{"a.txt", 3, true, "a.txt (3)"},
		{".bashrc", 1, false, ".bashrc (1)"},
		{"x." + strings.Repeat("e", 40), 1, false, "x." + strings.Repeat("e", 40) + " (1)"},
		{strings.Repeat("a", 300) + ".jpg", 12, false, strings.Repeat("a", maxFinalName-9) + " (12).jpg"},
		{strings.Repeat("ab. ", 80), 1, true, strings.Repeat("ab. ", 59) + "ab (1)"},
		{"CON.d", 0, true, ""}, // refused by CheckName
	}
	for _, tt := range tests {
		got := numbered(tt.name, tt.k, tt.dir)
		if got != tt.want {
			t.Errorf("numbered(%q, %d, %v) = %q, want %q", tt.name, tt.k, tt.dir, got, tt.want)
		}
		if len(got) > maxFinalName {
			t.Errorf("numbered(%q...) is %d bytes", tt.name[:10], len(got))
		}
	}
}
