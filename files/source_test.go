package files

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"golang.org/x/text/unicode/norm"
)

func TestBuildSourceTree(t *testing.T) {
	dir := t.TempDir()
	contents := map[string][]byte{
		"top.bin":               randBytes(1, protocols.ChunkSize+1),
		"album/b/one.txt":       []byte("one"),
		"album/b/c/big.bin":     randBytes(2, 2*protocols.ChunkSize+protocols.ChunkSize/2),
		"album/a.txt":           {},
		"album/exact.bin":       randBytes(3, protocols.ChunkSize),
		"album/new\nline.txt":   []byte("hidden"),
		"album/CON":             []byte("device"),
		"album/x.kith-partial":  []byte("ours"),
		"album/bad\x1b[2Jdir/f": []byte("in a refused dir"),
		"album/b/caf\u00e9":     []byte("NFC"),
		"album/b/cafe\u0301":    []byte("NFD: the same name in NFC"),
	}
	writeFiles(t, dir, contents)
	album := filepath.Join(dir, "album")
	mustDo(t, os.Mkdir(filepath.Join(album, "empty"), 0o750))
	mustDo(t, os.Chmod(filepath.Join(album, "b", "one.txt"), 0o4755)) // setuid is not sent
	mustDo(t, os.Symlink("/etc/passwd", filepath.Join(album, "link")))
	mustDo(t, syscall.Mkfifo(filepath.Join(album, "fifo"), 0o600))

	var warns []string
	src, err := BuildSource(t.Context(), []string{filepath.Join(dir, "top.bin"), album},
		SourceOptions{Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"top.bin", "album", "album/a.txt", "album/b", "album/b/c", "album/b/c/big.bin",
		"album/b/caf\u00e9", "album/b/one.txt", "album/empty", "album/exact.bin"}
	if got := paths(src.Manifest); !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	for _, left := range []string{"link", "fifo", `new\nline.txt`, "CON", "x.kith-partial", `bad\x1b[2Jdir`, "same name as"} {
		if !slices.ContainsFunc(warns, func(w string) bool { return strings.Contains(w, left) }) {
			t.Errorf("no warning about %q in %q", left, warns)
		}
	}
	for _, w := range warns {
		if strings.ContainsAny(w, "\n\x1b") {
			t.Errorf("warning %q holds a raw control character", w)
		}
	}
	checkSource(t, src, dir)
}

// checkSource checks src's manifest against the files under dir (the
// parent of its top-level items) and reads every chunk back.
func checkSource(t *testing.T, src *Source, dir string) {
	t.Helper()
	if err := src.Manifest.Validate(); err != nil {
		t.Fatal(err)
	}
	if b, _ := src.Manifest.Marshal(); !bytes.Equal(b, src.Bytes) || src.ContentID != protocols.ContentID(b) {
		t.Error("Bytes or ContentID do not match the manifest")
	}
	r := src.NewReader()
	defer r.Close()
	buf := make([]byte, protocols.ChunkSize)
	for i, e := range src.Manifest.Entries {
		local := src.Locals[i]
		if rel, err := filepath.Rel(dir, local); err != nil || norm.NFC.String(filepath.ToSlash(rel)) != e.Path {
			t.Errorf("local %q for entry %q", local, e.Path)
		}
		info, err := os.Lstat(local)
		if err != nil {
			t.Fatal(err)
		}
		if e.Mode != info.Mode().Perm() || e.Dir != info.IsDir() {
			t.Errorf("%s: mode %v dir %v, local %v", e.Path, e.Mode, e.Dir, info.Mode())
		}
		if e.Dir {
			continue
		}
		data, _ := os.ReadFile(local)
		if want := fileEntry(e.Path, data, e.Mode); !slices.Equal(e.Chunks, want.Chunks) {
			t.Errorf("%s: chunk hashes differ", e.Path)
		}
		var back []byte
		for k := range e.Chunks {
			c, err := r.ReadChunk(i, uint64(k), buf)
			if err != nil {
				t.Fatalf("%s chunk %d: %v", e.Path, k, err)
			}
			back = append(back, c...)
		}
		if !bytes.Equal(back, data) {
			t.Errorf("%s: chunks read back differ from the file", e.Path)
		}
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBuildSourceErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) []string
		want  string
	}{
		{"nothing", func(*testing.T, string) []string { return nil }, "nothing to send"},
		{"missing", func(t *testing.T, dir string) []string {
			return []string{filepath.Join(dir, "nope")}
		}, "no such file"},
		{"top-level symlink", func(t *testing.T, dir string) []string {
			mustDo(t, os.Symlink(dir, filepath.Join(dir, "l")))
			return []string{filepath.Join(dir, "l")}
		}, "is a symbolic link; kith does not follow links"},
		{"top-level fifo", func(t *testing.T, dir string) []string {
			mustDo(t, syscall.Mkfifo(filepath.Join(dir, "f"), 0o600))
			return []string{filepath.Join(dir, "f")}
		}, "not a regular file or directory"},
		{"top-level refused name", func(t *testing.T, dir string) []string {
			writeFiles(t, dir, map[string][]byte{"nul.txt": nil})
			return []string{filepath.Join(dir, "nul.txt")}
		}, "cannot be sent under its name"},
		{"same base name", func(t *testing.T, dir string) []string {
			writeFiles(t, dir, map[string][]byte{"a/x": nil, "b/x/y": nil})
			return []string{filepath.Join(dir, "a/x"), filepath.Join(dir, "b/x")}
		}, "would have the same name"},
		{"same name but for case", func(t *testing.T, dir string) []string {
			writeFiles(t, dir, map[string][]byte{"a/Photo.JPG": nil, "b/photo.jpg": nil})
			return []string{filepath.Join(dir, "a/Photo.JPG"), filepath.Join(dir, "b/photo.jpg")}
		}, "would have the same name"},
		{"unreadable file", func(t *testing.T, dir string) []string {
			writeFiles(t, dir, map[string][]byte{"d/secret": []byte("x")})
			mustDo(t, os.Chmod(filepath.Join(dir, "d/secret"), 0))
			return []string{filepath.Join(dir, "d")}
		}, "secret"},
		{"unreadable dir", func(t *testing.T, dir string) []string {
			writeFiles(t, dir, map[string][]byte{"d/locked/f": []byte("x")})
			mustDo(t, os.Chmod(filepath.Join(dir, "d/locked"), 0))
			t.Cleanup(func() { os.Chmod(filepath.Join(dir, "d/locked"), 0o755) })
			return []string{filepath.Join(dir, "d")}
		}, "locked"},
		{"file over the size limit", func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "huge")
			writeFiles(t, dir, map[string][]byte{"huge": nil})
			if err := os.Truncate(p, protocols.MaxFileSize+1); err != nil {
				t.Skipf("no sparse file of 1 TiB here: %v", err)
			}
			return []string{p}
		}, "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "unreadable") && os.Geteuid() == 0 {
				t.Skip("root reads everything")
			}
			args := tt.setup(t, t.TempDir())
			_, err := BuildSource(t.Context(), args, SourceOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestBuildSourceTooManyEntries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "many")
	mustDo(t, os.Mkdir(dir, 0o755))
	first := filepath.Join(dir, "f0")
	writeFiles(t, dir, map[string][]byte{"f0": nil})
	for i := 1; i < protocols.MaxEntries; i++ { // links: much faster to make than files
		mustDo(t, os.Link(first, filepath.Join(dir, "f"+strconv.Itoa(i))))
	}
	// The directory itself plus MaxEntries files is one too many.
	_, err := BuildSource(t.Context(), []string{dir}, SourceOptions{})
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("error %v, want one about too many entries", err)
	}
}

func TestSourceChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"modified in place", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			mustDo(t, err)
			f.WriteAt([]byte("changed"), 10)
			f.Close()
			mustDo(t, os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))) // mtimes are coarse
		}},
		{"truncated", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, protocols.ChunkSize)) }},
		{"grown", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, 3*protocols.ChunkSize)) }},
		{"removed", func(t *testing.T, p string) { mustDo(t, os.Remove(p)) }},
		{"replaced by a symlink", func(t *testing.T, p string) {
			other := p + ".other"
			mustDo(t, os.WriteFile(other, randBytes(9, 2*protocols.ChunkSize), 0o644))
			mustDo(t, os.Remove(p))
			mustDo(t, os.Symlink(other, p))
		}},
		{"replaced by a fifo", func(t *testing.T, p string) {
			mustDo(t, os.Remove(p))
			mustDo(t, syscall.Mkfifo(p, 0o600))
		}},
	}
	for _, tt := range tests {
		for _, warm := range []bool{false, true} {
			name := tt.name
			if warm {
				name += " while open"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				writeFiles(t, dir, map[string][]byte{"f": randBytes(4, 2*protocols.ChunkSize)})
				src, err := BuildSource(t.Context(), []string{filepath.Join(dir, "f")}, SourceOptions{})
				mustDo(t, err)
				r := src.NewReader()
				defer r.Close()
				buf := make([]byte, protocols.ChunkSize)
				if warm {
					_, err := r.ReadChunk(0, 0, buf)
					mustDo(t, err)
				}
				tt.change(t, filepath.Join(dir, "f"))
				_, err = r.ReadChunk(0, 1, buf)
				if warm && tt.name != "modified in place" && tt.name != "truncated" && tt.name != "grown" {
					// The open file is still the one offered: reading it is right.
					if err != nil {
						t.Errorf("reading the file still open: %v", err)
					}
					r.Close()
					r = src.NewReader()
					_, err = r.ReadChunk(0, 1, buf)
				}
				if !errors.Is(err, ErrSourceChanged) {
					t.Errorf("error %v, want ErrSourceChanged", err)
				}
			})
		}
	}
}

func TestBuildSourceChangedWhileHashing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeFiles(t, dir, map[string][]byte{"f": randBytes(5, 4*protocols.ChunkSize)})
	once := false
	_, err := BuildSource(t.Context(), []string{p}, SourceOptions{Progress: func(done, total int64) {
		if !once {
			once = true
			mustDo(t, os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)))
		}
	}})
	if !errors.Is(err, ErrSourceChanged) {
		t.Errorf("error %v, want ErrSourceChanged", err)
	}
}

func TestBuildSourceCancel(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sparse")
	writeFiles(t, dir, map[string][]byte{"sparse": nil})
	mustDo(t, os.Truncate(p, 256*protocols.ChunkSize))
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := BuildSource(ctx, []string{dir}, SourceOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("while hashing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var last int64
		_, err := BuildSource(ctx, []string{p}, SourceOptions{Progress: func(done, total int64) {
			last = done
			cancel()
		}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if last >= 256*protocols.ChunkSize {
			t.Errorf("hashed all %d bytes after the cancel", last)
		}
	})
}

func TestBuildSourceProgress(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"a": randBytes(6, 3*protocols.ChunkSize+5), "b": []byte("b")})
	var calls [][2]int64
	_, err := BuildSource(t.Context(), []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")},
		SourceOptions{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	mustDo(t, err)
	total := int64(3*protocols.ChunkSize + 6)
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{total, total} {
		t.Errorf("progress %v, want it to end at %d of %d", calls, total, total)
	}
}

func TestOpenSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"d/a": randBytes(7, protocols.ChunkSize+3), "d/e/b": []byte("b")})
	src, err := BuildSource(t.Context(), []string{filepath.Join(dir, "d")}, SourceOptions{})
	mustDo(t, err)
	again, err := OpenSource(src.Bytes, src.Locals)
	mustDo(t, err)
	if again.ContentID != src.ContentID {
		t.Error("content ID differs after OpenSource")
	}
	checkSource(t, again, dir)

	if _, err := OpenSource(src.Bytes, src.Locals[1:]); err == nil {
		t.Error("OpenSource took too few local paths")
	}
	rel := slices.Clone(src.Locals)
	rel[0] = "d"
	if _, err := OpenSource(src.Bytes, rel); err == nil {
		t.Error("OpenSource took a relative local path")
	}
	if _, err := OpenSource([]byte("{"), src.Locals); err == nil {
		t.Error("OpenSource took a broken manifest")
	}
}

func TestReadChunkBadArguments(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"d/a": []byte("abc")})
	src, err := BuildSource(t.Context(), []string{filepath.Join(dir, "d")}, SourceOptions{})
	mustDo(t, err)
	r := src.NewReader()
	defer r.Close()
	big, small := make([]byte, protocols.ChunkSize), make([]byte, 10)
	tests := []struct {
		name  string
		entry int
		index uint64
		buf   []byte
	}{
		{"negative entry", -1, 0, big},
		{"entry past the end", 2, 0, big},
		{"directory", 0, 0, big},
		{"chunk past the end", 1, 1, big},
		{"small buffer", 1, 0, small},
	}
	for _, tt := range tests {
		if _, err := r.ReadChunk(tt.entry, tt.index, tt.buf); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestEscapeControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain é 名前 ok", "plain é 名前 ok"},
		{"a\nb\rc\td", `a\nb\rc\td`},
		{"\x1b[2J\x7f\u0085", `\x1b[2J\x7f\u0085`},
		{"rtl\u202eexe.txt zw\u200bj", `rtl\u202eexe.txt zw\u200bj`},
		{"line\u2028sep", `line\u2028sep`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tt := range tests {
		if got := escapeControls(tt.in); got != tt.want {
			t.Errorf("escapeControls(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
