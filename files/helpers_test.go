package files

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/invariants"
)

// randBytes returns n bytes that depend only on seed.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b
}

// writeFiles creates files (slash paths relative to dir, with their
// contents) and their parent directories.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// paths lists the entry paths of m.
func paths(m *protocols.Manifest) []string {
	var ps []string
	for _, e := range m.Entries {
		ps = append(ps, e.Path)
	}
	return ps
}

// fileEntry builds a manifest file entry holding data.
func fileEntry(path string, data []byte, mode os.FileMode) protocols.Entry {
	e := protocols.Entry{Path: path, Size: int64(len(data)), Mode: mode}
	for off := 0; off < len(data); off += protocols.ChunkSize {
		e.Chunks = append(e.Chunks, protocols.HashChunk(data[off:min(off+protocols.ChunkSize, len(data))]))
	}
	return e
}

// dirEntry builds a manifest directory entry.
func dirEntry(path string, mode os.FileMode) protocols.Entry {
	return protocols.Entry{Path: path, Dir: true, Mode: mode}
}

// chunksOf splits data into chunks.
func chunksOf(data []byte) [][]byte {
	var cs [][]byte
	for off := 0; off < len(data); off += protocols.ChunkSize {
		cs = append(cs, data[off:min(off+protocols.ChunkSize, len(data))])
	}
	return cs
}

// assertFile fails t unless path holds data with permission bits perm.
func assertFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, want a regular file %v", path, info.Mode(), perm)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s: %d bytes (err %v), want %d bytes as sent", path, len(got), err, len(data))
	}
}

func TestPartialSuffixIsInvariants(t *testing.T) {
	if !invariants.IsPartial("x" + PartialSuffix) {
		t.Fatalf("protocols/invariants does not take %q for a partial", PartialSuffix)
	}
}
