package invariants

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFinals(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.bin"), "all of a")
	write(t, filepath.Join(src, "docs", "x.txt"), "x")
	want := SumTree(t, filepath.Join(src, "a.bin"))
	for k, v := range SumTree(t, filepath.Join(src, "docs")) {
		want[k] = v
	}
	tests := []struct {
		name   string
		files  map[string]string
		errors int
	}{
		{"partials only", map[string]string{"a.bin.kith-partial": "all", "docs.kith-partial/x.txt": ""}, 0},
		{"complete", map[string]string{"a.bin": "all of a", "docs/x.txt": "x"}, 0},
		{"half a file under its final name", map[string]string{"a.bin": "all"}, 1},
		{"a name never sent", map[string]string{"b.bin": "b"}, 1},
		{"wrong content in a folder", map[string]string{"docs/x.txt": "y", "a.bin.kith-partial": ""}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				write(t, filepath.Join(dir, filepath.FromSlash(name)), body)
			}
			ft := &fakeT{TB: t}
			CheckFinals(ft, dir, want)
			if ft.errors != tc.errors {
				t.Errorf("%d errors, want %d", ft.errors, tc.errors)
			}
		})
	}
}

func TestPerSenderOrder(t *testing.T) {
	sent := map[string][]int{"ana": {1, 2, 3}, "ben": {7}}
	say := func(pairs ...any) []Said[string, int] {
		var out []Said[string, int]
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, Said[string, int]{pairs[i].(string), pairs[i+1].(int)})
		}
		return out
	}
	tests := []struct {
		name   string
		got    []Said[string, int]
		errors int
	}{
		{"interleaved, in order", say("ana", 1, "ben", 7, "ana", 2, "ana", 3), 0},
		{"reordered", say("ana", 2, "ana", 1, "ana", 3, "ben", 7), 1},
		{"repeated", say("ana", 1, "ana", 1, "ana", 2, "ana", 3, "ben", 7), 1},
		{"lost", say("ana", 1, "ana", 3, "ben", 7), 1},
		{"stranger", say("ana", 1, "ana", 2, "ana", 3, "ben", 7, "eve", 9), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			PerSenderOrder(ft, sent, tc.got)
			if ft.errors != tc.errors {
				t.Errorf("%d errors, want %d", ft.errors, tc.errors)
			}
		})
	}
}

func TestInSentOrder(t *testing.T) {
	sent := map[string][]int{"ana": {1, 2, 3}, "ben": {7}}
	say := func(pairs ...any) []Said[string, int] {
		var out []Said[string, int]
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, Said[string, int]{pairs[i].(string), pairs[i+1].(int)})
		}
		return out
	}
	tests := []struct {
		name   string
		got    []Said[string, int]
		errors int
	}{
		{"all, interleaved", say("ana", 1, "ben", 7, "ana", 2, "ana", 3), 0},
		{"some, in order", say("ana", 1, "ana", 3), 0},
		{"none", nil, 0},
		{"reordered", say("ana", 2, "ana", 1), 1},
		{"repeated", say("ana", 1, "ana", 1, "ana", 2), 1},
		{"never sent", say("ana", 4), 1},
		{"stranger", say("eve", 9), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			InSentOrder(ft, sent, tc.got)
			if ft.errors != tc.errors {
				t.Errorf("%d errors, want %d", ft.errors, tc.errors)
			}
		})
	}
}

func TestExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		stored []string
		errors int
	}{{[]string{"a", "b", "c"}, 0}, {[]string{"a", "c"}, 1}, {[]string{"a", "b", "b"}, 1}} {
		ft := &fakeT{TB: t}
		ExactlyOnce(ft, tc.stored, []string{"a", "b"})
		if ft.errors != tc.errors {
			t.Errorf("stored %v: %d errors, want %d", tc.stored, ft.errors, tc.errors)
		}
	}
}

func TestShownOnce(t *testing.T) {
	for _, tc := range []struct {
		shown  []string
		errors int
	}{{[]string{"a", "b", "x"}, 0}, {[]string{"a"}, 1}, {[]string{"a", "b", "b"}, 1}, {nil, 2}} {
		ft := &fakeT{TB: t}
		ShownOnce(ft, tc.shown, []string{"a", "b"})
		if ft.errors != tc.errors {
			t.Errorf("shown %v: %d errors, want %d", tc.shown, ft.errors, tc.errors)
		}
	}
}

func TestAssertNothingUnder(t *testing.T) {
	tr := NewTree(t)
	before := Snapshot(t, tr.Root)
	ft := &fakeT{TB: t}
	AssertNothingUnder(ft, before, tr.Root)
	if ft.errors != 0 {
		t.Fatalf("an untouched root: %d errors", ft.errors)
	}
	write(t, filepath.Join(tr.Root, "x.kith-partial"), "")
	AssertNothingUnder(ft, before, tr.Root)
	if ft.errors != 1 {
		t.Fatalf("an empty partial: %d errors, want 1", ft.errors)
	}
}
