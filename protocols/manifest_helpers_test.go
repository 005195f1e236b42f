package protocols

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// fakeChunks returns n distinct chunk hashes (not of any real data).
func fakeChunks(n int64) []Hash {
	if n == 0 {
		return nil
	}
	hs := make([]Hash, n)
	for i := range hs {
		binary.BigEndian.PutUint64(hs[i][:], uint64(i)+1)
	}
	return hs
}

// file is a file entry of size bytes with fake chunk hashes.
func file(path string, size int64) Entry {
	return Entry{Path: path, Size: size, Mode: 0o644, Chunks: fakeChunks(ChunkCount(size))}
}

// fileOf is a file entry holding data, with its real chunk hashes.
func fileOf(path string, data []byte) Entry {
	e := Entry{Path: path, Size: int64(len(data)), Mode: 0o644}
	for len(data) > 0 {
		n := min(len(data), ChunkSize)
		e.Chunks = append(e.Chunks, HashChunk(data[:n]))
		data = data[n:]
	}
	return e
}

func dir(path string) Entry { return Entry{Path: path, Dir: true, Mode: 0o755} }

func manifest(entries ...Entry) *Manifest { return &Manifest{Entries: entries} }

// validManifests are manifests that must survive Marshal and ParseManifest
// unchanged.
func validManifests() map[string]*Manifest {
	return map[string]*Manifest{
		"one empty file": manifest(file("empty", 0)),
		"one empty dir":  manifest(dir("empty dir")),
		"small file":     manifest(fileOf("hello.txt", []byte("hello, world\n"))),
		"chunk sizes": manifest(file("one chunk", ChunkSize), file("two chunks", ChunkSize+1),
			file("three chunks", 2*ChunkSize+1), file("one byte", 1)),
		"nested": manifest(dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/deep.bin", 5),
			file("a/top.txt", 3), dir("a/empty"), file("a/b/.hidden", 0)),
		"unicode": manifest(dir("Fotos 2026"), file("Fotos 2026/Straße am Meer.jpg", 123456),
			file("Fotos 2026/日本語 ファイル.png", 42), file("Fotos 2026/emoji 👋🏽.gif", 7),
			dir("Fotos 2026/.thumbnails"), file("Fotos 2026/.thumbnails/ä", 1)),
		"same name in other dirs": manifest(dir("x"), dir("y"), file("x/a", 1), file("y/a", 1),
			file("y/A.txt", 2), file("x/a.txt", 2)),
		"modes": manifest(Entry{Path: "private", Dir: true}, Entry{Path: "private/key", Size: 0, Mode: 0o600},
			Entry{Path: "run.sh", Size: 0, Mode: 0o777}, Entry{Path: "none", Size: 0}),
		"big file": manifest(file("disk.img", 64*ChunkSize-7)),
	}
}

// marshal encodes a valid manifest or fails the test.
func marshal(tb testing.TB, m *Manifest) []byte {
	tb.Helper()
	b, err := m.Marshal()
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	return b
}

// manifestsEqual compares manifests entry by entry (nil and empty Chunks are
// the same).
func manifestsEqual(a, b *Manifest) bool {
	return slices.EqualFunc(a.Entries, b.Entries, func(x, y Entry) bool {
		return x.Path == y.Path && x.Dir == y.Dir && x.Size == y.Size && x.Mode == y.Mode &&
			slices.Equal(x.Chunks, y.Chunks)
	})
}

// wireManifest encodes m (which need not be valid) after edit changes its
// protobuf form; roots are those of m's chunk hashes, computed before edit.
func wireManifest(tb testing.TB, m *Manifest, edit func(*filespb.Manifest)) []byte {
	tb.Helper()
	pm := &filespb.Manifest{Version: manifestVersion, ChunkSize: ChunkSize}
	for i := range m.Entries {
		e := &m.Entries[i]
		root := e.Root()
		var chunks bytes.Buffer
		for _, c := range e.Chunks {
			chunks.Write(c[:])
		}
		pm.Entries = append(pm.Entries, &filespb.Entry{Path: e.Path, Dir: e.Dir, Size: uint64(e.Size),
			Mode: uint32(e.Mode), Chunks: chunks.Bytes(), Root: root[:]})
	}
	root := m.Root()
	pm.Root = root[:]
	if edit != nil {
		edit(pm)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pm)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
