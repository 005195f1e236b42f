package protocols

import (
	"io"
	"net"
	"strconv"
	"testing"
)

// BenchmarkHashChunk hashes whole chunks; its MB/s bounds how fast a peer
// can verify (or hash, to send) a file on one core.
func BenchmarkHashChunk(b *testing.B) {
	data := make([]byte, ChunkSize)
	for i := range data {
		data[i] = byte(i % 251)
	}
	b.SetBytes(ChunkSize)
	b.ReportAllocs()
	for b.Loop() {
		HashChunk(data)
	}
}

// BenchmarkChunkPipe sends whole chunks through WriteChunk and reads them
// with Read and ReadChunkData over an in-memory pipe. The pipe copies each
// chunk once, from the writer's buffer into the reader's; the framing adds
// no copy and no allocation per chunk on the writer's side.
func BenchmarkChunkPipe(b *testing.B) {
	pipes := map[string]func() (io.ReadCloser, io.WriteCloser){
		"net.Pipe": func() (io.ReadCloser, io.WriteCloser) { return net.Pipe() },
		"io.Pipe":  func() (io.ReadCloser, io.WriteCloser) { return io.Pipe() },
	}
	for name, pipe := range pipes {
		b.Run(name, func(b *testing.B) {
			pr, pw := pipe()
			data := make([]byte, ChunkSize)
			done := make(chan error, 1)
			go func() { // owned here: it ends when the reader closes pr
				w := NewFilesWriter(pw)
				var err error
				for i := uint64(0); err == nil; i++ {
					err = w.WriteChunk(ChunkHeader{Entry: 1, Index: i, Size: ChunkSize}, data)
				}
				done <- err
			}()
			r, buf := NewFilesReader(pr), make([]byte, ChunkSize)
			b.SetBytes(ChunkSize)
			b.ReportAllocs()
			for b.Loop() {
				f, err := r.Read(MaxFilesControlFrame)
				if err != nil || f.Chunk == nil {
					b.Fatalf("Read = %+v, %v", f, err)
				}
				if err := r.ReadChunkData(buf[:f.Chunk.Size]); err != nil {
					b.Fatal(err)
				}
			}
			pr.Close()
			<-done
		})
	}
}

// BenchmarkParseManifest parses a manifest of MaxEntries files of 40 chunks
// each, near MaxManifestBytes: the most work one Offer can ask of a receiver.
func BenchmarkParseManifest(b *testing.B) {
	m := manifest(dir("dir"))
	for i := 1; i < MaxEntries; i++ {
		m.Entries = append(m.Entries, file("dir/file number "+strconv.Itoa(i)+" Ä.txt", 40*ChunkSize))
	}
	enc := marshal(b, m)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseManifest(enc); err != nil {
			b.Fatal(err)
		}
	}
}
