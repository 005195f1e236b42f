package files

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kithnet/kith/protocols"
)

// sinkCase is a manifest to receive and the bytes of its files.
type sinkCase struct {
	m    *protocols.Manifest
	data map[string][]byte // by entry path
}

// newSinkCase builds a valid manifest: file entries hold the bytes in data.
func newSinkCase(t testing.TB, data map[string][]byte, es ...protocols.Entry) sinkCase {
	t.Helper()
	for i, e := range es {
		if !e.Dir {
			es[i] = fileEntry(e.Path, data[e.Path], e.Mode)
		}
	}
	m := &protocols.Manifest{Entries: es}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return sinkCase{m: m, data: data}
}

// albumCase has top-level files and a folder with nested entries.
func albumCase(t testing.TB) sinkCase {
	return newSinkCase(t, map[string][]byte{
		"a.txt":           randBytes(10, 2*protocols.ChunkSize+protocols.ChunkSize/2),
		"empty":           {},
		".bashrc":         []byte("alias ls='ls -F'\n"),
		"album/x.bin":     randBytes(11, protocols.ChunkSize),
		"album/sub/y":     []byte("yyy"),
		"album/sub/z.bin": randBytes(12, protocols.ChunkSize+1),
	},
		protocols.Entry{Path: "a.txt", Mode: 0o640},
		protocols.Entry{Path: "empty", Mode: 0o644},
		dirEntry("album", 0o777),
		protocols.Entry{Path: "album/x.bin", Mode: 0o777},
		dirEntry("album/sub", 0o700),
		protocols.Entry{Path: "album/sub/y", Mode: 0o400},
		dirEntry("album/emptydir", 0o750),
		protocols.Entry{Path: "album/sub/z.bin", Mode: 0o644},
		protocols.Entry{Path: ".bashrc", Mode: 0o600},
	)
}

type sinkChunk struct {
	entry int
	index uint64
}

// chunks lists every chunk of c, shuffled with seed.
func (c sinkCase) chunks(seed uint64) []sinkChunk {
	var cs []sinkChunk
	for i, e := range c.m.Entries {
		for k := range e.Chunks {
			cs = append(cs, sinkChunk{i, uint64(k)})
		}
	}
	rand.New(rand.NewPCG(seed, 0)).Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	return cs
}

func (c sinkCase) chunk(r sinkChunk) []byte {
	return chunksOf(c.data[c.m.Entries[r.entry].Path])[r.index]
}

// write writes chunks cs into s, calling after (if not nil) after each.
func (c sinkCase) write(t testing.TB, s *Sink, cs []sinkChunk, after func()) {
	t.Helper()
	for _, r := range cs {
		if err := s.WriteChunk(r.entry, r.index, c.chunk(r)); err != nil {
			t.Fatalf("chunk %d of entry %d: %v", r.index, r.entry, err)
		}
		if after != nil {
			after()
		}
	}
}

// check asserts that the items of c are in dir under names, with final
// modes (but for the folders in existed, which keep theirs).
func (c sinkCase) check(t testing.TB, dir string, names []string, existed ...string) {
	t.Helper()
	top := 0
	final := map[string]string{} // top-level entry path → final name
	for _, e := range c.m.Entries {
		first, rest, nested := strings.Cut(e.Path, "/")
		if !nested {
			final[first] = names[top]
			top++
		}
		p := filepath.Join(dir, final[first], filepath.FromSlash(rest))
		if e.Dir {
			info, err := os.Lstat(p)
			want := e.Mode&0o755 | 0o700
			if slices.Contains(existed, e.Path) && err == nil {
				want = info.Mode().Perm()
			}
			if err != nil || !info.IsDir() || info.Mode().Perm() != want {
				t.Errorf("%s: %v (%v), want a folder %v", p, info.Mode(), err, want)
			}
			continue
		}
		assertFile(t, p, c.data[e.Path], e.Mode&0o755|0o600)
	}
}

// assertNoFinal fails t if dir holds anything but partials and the names
// in before (N2: nothing under a final name before Finalize).
func assertNoFinal(t testing.TB, dir string, before ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), PartialSuffix) && !slices.Contains(before, de.Name()) {
			t.Errorf("%q exists before Finalize", de.Name())
		}
	}
}

// assertNoPartial fails t if a partial is left in dir.
func assertNoPartial(t testing.TB, dir string) {
	t.Helper()
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), PartialSuffix) {
			t.Errorf("%q left after Finalize", de.Name())
		}
	}
}

func TestSinkRoundTrip(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	names, err := PlanNames(dir, c.m, false)
	mustDo(t, err)
	if want := []string{"a.txt", "empty", "album", ".bashrc"}; !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	s, err := OpenSink(dir, c.m, names, false)
	mustDo(t, err)
	defer s.Close()
	assertNoFinal(t, dir)
	for p, mode := range map[string]fs.FileMode{
		"a.txt.kith-partial": 0o600, "album.kith-partial": 0o700 | fs.ModeDir,
		"album.kith-partial/sub/y": 0o600, "album.kith-partial/emptydir": 0o700 | fs.ModeDir,
	} {
		if info, err := os.Lstat(filepath.Join(dir, p)); err != nil || info.Mode() != mode {
			t.Errorf("partial %s: %v (%v), want %v", p, info.Mode(), err, mode)
		}
	}
	c.write(t, s, c.chunks(1), func() { assertNoFinal(t, dir) })
	mustDo(t, s.Sync())
	assertNoFinal(t, dir)
	mustDo(t, s.Finalize())
	c.check(t, dir, names)
	assertNoPartial(t, dir)
	want := []string{filepath.Join(dir, "a.txt"), filepath.Join(dir, "empty"),
		filepath.Join(dir, "album"), filepath.Join(dir, ".bashrc")}
	if got := s.FinalPaths(); !slices.Equal(got, want) {
		t.Errorf("FinalPaths %q, want %q", got, want)
	}
	mustDo(t, s.Finalize()) // twice is fine
	mustDo(t, s.Close())
	mustDo(t, s.Close())
}

func TestSinkResume(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	names, err := PlanNames(dir, c.m, false)
	mustDo(t, err)
	cs := c.chunks(2)
	s, err := OpenSink(dir, c.m, names, false)
	mustDo(t, err)
	if len(s.Created()) != c.m.Files() {
		t.Errorf("created %v, want all %d files", s.Created(), c.m.Files())
	}
	c.write(t, s, cs[:len(cs)/2], nil)
	mustDo(t, s.Sync())
	mustDo(t, s.Close()) // a crash: no Finalize

	s, err = OpenSink(dir, c.m, names, false)
	mustDo(t, err)
	defer s.Close()
	if len(s.Created()) != 0 {
		t.Errorf("resumed sink created %v again", s.Created())
	}
	assertNoFinal(t, dir)
	c.write(t, s, cs[len(cs)/2:], nil) // only the rest
	mustDo(t, s.Sync())
	mustDo(t, s.Finalize())
	c.check(t, dir, names)
	assertNoPartial(t, dir)
}

func TestSinkCrashBetweenItems(t *testing.T) {
	tests := []struct {
		name  string
		taken bool // a.txt appeared after planning: the crashed run took "a (1).txt"
	}{
		{"planned name", false},
		{"numbered name", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dir := albumCase(t), t.TempDir()
			names, err := PlanNames(dir, c.m, false)
			mustDo(t, err)
			s, err := OpenSink(dir, c.m, names, false)
			mustDo(t, err)
			c.write(t, s, c.chunks(3), nil)
			mustDo(t, s.Sync())
			mustDo(t, s.seal(0)) // as Finalize does before renaming
			mustDo(t, s.Close())
			movedA := "a.txt"
			if tt.taken {
				writeFiles(t, dir, map[string][]byte{"a.txt": []byte("someone else's")})
				movedA = "a (1).txt"
			}
			// The crashed Finalize renamed the first item only.
			mustDo(t, os.Rename(filepath.Join(dir, "a.txt"+PartialSuffix), filepath.Join(dir, movedA)))

			s, err = OpenSink(dir, c.m, names, false)
			mustDo(t, err)
			defer s.Close()
			mustDo(t, s.Finalize())
			got := s.FinalPaths()
			if got[0] != filepath.Join(dir, movedA) {
				t.Errorf("a.txt reported at %s, want %s", got[0], movedA)
			}
			c.check(t, dir, []string{movedA, "empty", "album", ".bashrc"})
			assertNoPartial(t, dir)
			if tt.taken {
				assertFile(t, filepath.Join(dir, "a.txt"), []byte("someone else's"), 0o644)
			}
		})
	}
}

func TestSinkFinalNameAppears(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	names, err := PlanNames(dir, c.m, false)
	mustDo(t, err)
	s, err := OpenSink(dir, c.m, names, false)
	mustDo(t, err)
	defer s.Close()
	c.write(t, s, c.chunks(4), nil)
	mustDo(t, s.Sync())
	writeFiles(t, dir, map[string][]byte{"a.txt": []byte("mine"), "album/keep": []byte("keep")})
	mustDo(t, s.Finalize())
	c.check(t, dir, []string{"a (1).txt", "empty", "album (1)", ".bashrc"})
	assertFile(t, filepath.Join(dir, "a.txt"), []byte("mine"), 0o644)
	assertFile(t, filepath.Join(dir, "album/keep"), []byte("keep"), 0o644)
	if got := s.FinalPaths(); got[0] != filepath.Join(dir, "a (1).txt") || got[2] != filepath.Join(dir, "album (1)") {
		t.Errorf("FinalPaths %q", got)
	}
}

func TestSinkDiskFull(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	names, err := PlanNames(dir, c.m, false)
	mustDo(t, err)
	s, err := OpenSink(dir, c.m, names, false)
	mustDo(t, err)
	defer s.Close()
	full := false
	s.writeAt = func(f *os.File, p []byte, off int64) (int, error) {
		if full { // half the chunk fits, like a real disk filling up
			n, _ := f.WriteAt(p[:len(p)/2], off)
			return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(p, off)
	}
	cs := c.chunks(5)
	c.write(t, s, cs[:3], nil)
	mustDo(t, s.Sync())
	full = true
	err = s.WriteChunk(cs[3].entry, cs[3].index, c.chunk(cs[3]))
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v, want ErrDiskFull wrapping ENOSPC", err)
	}
	assertNoFinal(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "a.txt"+PartialSuffix)); err != nil {
		t.Errorf("partial removed on a full disk: %v", err)
	}
	full = false // space freed: the same chunk again, then the rest
	c.write(t, s, cs[3:], nil)
	mustDo(t, s.Sync())
	mustDo(t, s.Finalize())
	c.check(t, dir, names)
}

func TestSinkBadChunks(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	s, err := OpenSink(dir, c.m, []string{"a.txt", "empty", "album", ".bashrc"}, false)
	mustDo(t, err)
	defer s.Close()
	tests := []struct {
		name  string
		entry int
		index uint64
		data  []byte
	}{
		{"negative entry", -1, 0, nil},
		{"entry past the end", 99, 0, nil},
		{"folder", 2, 0, nil},
		{"chunk past the end", 0, 3, []byte("x")},
		{"short chunk", 0, 0, []byte("x")},
		{"long last chunk", 0, 2, make([]byte, protocols.ChunkSize)},
		{"empty file", 1, 0, nil},
	}
	for _, tt := range tests {
		if err := s.WriteChunk(tt.entry, tt.index, tt.data); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	mustDo(t, s.Close())
	if err := s.WriteChunk(0, 0, c.chunk(sinkChunk{0, 0})); err == nil {
		t.Error("WriteChunk after Close: no error")
	}
}

func TestOpenSinkBadNames(t *testing.T) {
	c, dir := albumCase(t), t.TempDir()
	tests := []struct {
		name  string
		names []string
	}{
		{"too few", []string{"a.txt", "empty", "album"}},
		{"path", []string{"a.txt", "empty", "x/album", ".bashrc"}},
		{"dot dot", []string{"a.txt", "empty", "..", ".bashrc"}},
		{"same name twice", []string{"a.txt", "A.TXT", "album", ".bashrc"}},
		{"partial name", []string{"a.txt", "empty" + PartialSuffix, "album", ".bashrc"}},
		{"too long with the suffix", []string{strings.Repeat("a", 250), "empty", "album", ".bashrc"}},
	}
	for _, tt := range tests {
		if s, err := OpenSink(dir, c.m, tt.names, false); err == nil {
			s.Close()
			t.Errorf("%s: no error", tt.name)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("refused names left %d entries in the folder", len(des))
	}
}

func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	mustDo(t, CheckSpace(dir, 1))
	err := CheckSpace(dir, 1<<60)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "needs 1.0 EiB") || !strings.Contains(err.Error(), "free on "+dir) {
		t.Errorf("error %v, want ErrNoSpace saying what is needed and free", err)
	}
	if err := CheckSpace(filepath.Join(dir, "nope"), 1); err == nil || errors.Is(err, ErrNoSpace) {
		t.Errorf("missing folder: error %v", err)
	}
}
