package files

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kithnet/kith/protocols"
)

// BenchmarkBuildSource hashes a 256 MiB file (from the page cache).
func BenchmarkBuildSource(b *testing.B) {
	p := filepath.Join(b.TempDir(), "big")
	f, err := os.Create(p)
	mustDo(b, err)
	chunk := randBytes(20, protocols.ChunkSize)
	for range 256 {
		_, err := f.Write(chunk)
		mustDo(b, err)
	}
	mustDo(b, f.Close())
	b.SetBytes(256 << 20)
	for b.Loop() {
		if _, err := BuildSource(b.Context(), []string{p}, SourceOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSinkWrite writes a 64 MiB file chunk by chunk into a fresh Sink
// and syncs it.
func BenchmarkSinkWrite(b *testing.B) {
	const chunks = 64
	c := newSinkCase(b, map[string][]byte{"f": make([]byte, chunks*protocols.ChunkSize)},
		protocols.Entry{Path: "f", Mode: 0o644})
	data := randBytes(21, protocols.ChunkSize)
	dir := b.TempDir()
	b.SetBytes(chunks * protocols.ChunkSize)
	n := 0
	for b.Loop() {
		n++
		d := filepath.Join(dir, strconv.Itoa(n))
		mustDo(b, os.Mkdir(d, 0o755))
		s, err := OpenSink(d, c.m, []string{"f"}, false)
		mustDo(b, err)
		for k := range uint64(chunks) {
			mustDo(b, s.WriteChunk(0, k, data))
		}
		mustDo(b, s.Sync())
		mustDo(b, s.Close())
		mustDo(b, os.RemoveAll(d))
	}
}
