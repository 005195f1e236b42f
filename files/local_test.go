package files

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kithnet/kith/protocols"
)

// TestLocalManyFiles moves more files than a SourceReader or a Sink keeps
// open, chunks in random order, through a crash of the receiver.
func TestLocalManyFiles(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	contents := map[string][]byte{}
	for i := range 3 * readerOpenFiles / 2 {
		contents["many/"+strconv.Itoa(i)] = randBytes(uint64(30+i), protocols.ChunkSize+i*1000)
	}
	writeFiles(t, from, contents)
	src, err := BuildSource(t.Context(), []string{filepath.Join(from, "many")}, SourceOptions{})
	mustDo(t, err)
	r := src.NewReader()
	defer r.Close()
	c := sinkCase{m: src.Manifest, data: contents}
	cs := c.chunks(7)
	names, err := PlanNames(to, c.m, false)
	mustDo(t, err)

	buf := make([]byte, protocols.ChunkSize)
	move := func(s *Sink, cs []sinkChunk) {
		for _, ref := range cs {
			data, err := r.ReadChunk(ref.entry, ref.index, buf)
			mustDo(t, err)
			if protocols.HashChunk(data) != c.m.Entries[ref.entry].Chunks[ref.index] {
				t.Fatalf("chunk %d of %s: wrong hash", ref.index, c.m.Entries[ref.entry].Path)
			}
			mustDo(t, s.WriteChunk(ref.entry, ref.index, data))
		}
		mustDo(t, s.Sync())
	}
	s, err := OpenSink(to, c.m, names, false)
	mustDo(t, err)
	half := len(cs) / 2
	move(s, cs[:half])
	mustDo(t, s.Close())
	s, err = OpenSink(to, c.m, names, false)
	mustDo(t, err)
	defer s.Close()
	move(s, cs[half:])
	assertNoFinal(t, to)
	mustDo(t, s.Finalize())
	c.check(t, to, names)
}
