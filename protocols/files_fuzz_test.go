package protocols

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReadFilesFrame reads frames, and the data of chunks, from arbitrary
// bytes until an error. Read must not panic; every error is io.EOF or wraps
// exactly one sentinel; and every accepted frame is canonical in effect:
// Write (or WriteChunk) accepts it, and reading what it wrote gives an equal
// frame and encodes to the same bytes again.
func FuzzReadFilesFrame(f *testing.F) {
	for _, s := range filesSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewFilesReader(bytes.NewReader(data))
		for {
			fr, err := r.Read(MaxFilesFrame)
			if err != nil {
				checkDMReadError(t, err)
				return
			}
			var chunk []byte
			if fr.Chunk != nil {
				chunk = make([]byte, fr.Chunk.Size)
				if err := r.ReadChunkData(chunk); err != nil {
					checkDMReadError(t, err)
					return
				}
			}
			checkFilesReencode(t, fr, chunk)
		}
	})
}

func checkFilesReencode(t *testing.T, f FilesFrame, chunk []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := NewFilesWriter(&buf)
	var err error
	if f.Chunk != nil {
		err = w.WriteChunk(*f.Chunk, chunk)
	} else {
		err = w.Write(f)
	}
	if err != nil {
		t.Fatalf("the writer refuses the frame Read accepted (%+v): %v", f, err)
	}
	enc := bytes.Clone(buf.Bytes())
	r := NewFilesReader(&buf)
	again, err := r.Read(MaxFilesFrame)
	if err != nil {
		t.Fatalf("re-encoded frame %x does not read: %v", enc, err)
	}
	if again.Chunk != nil {
		data := make([]byte, again.Chunk.Size)
		if err := r.ReadChunkData(data); err != nil || !bytes.Equal(data, chunk) {
			t.Fatalf("re-encoded chunk data: %x, %v; want %x", data, err, chunk)
		}
	}
	if !filesFramesEqual(again, f) {
		t.Fatalf("decode(encode(f)) = %+v, want %+v", again, f)
	}
	if _, err := r.Read(MaxFilesFrame); err != io.EOF {
		t.Fatalf("re-encoded frame %x: after it, err = %v, want io.EOF", enc, err)
	}
}

// filesSeeds returns the golden, round-trip and hostile inputs, chunks, and
// a stream of several frames, each at most 4 KiB (see dmSeeds).
func filesSeeds(tb testing.TB) [][]byte {
	const maxSeed = 4 << 10
	seeds := goldenFilesInputs(tb)
	var stream []byte
	for _, fr := range validFilesFrames(tb) {
		if enc := encodeFiles(tb, fr); len(enc) <= maxSeed {
			seeds = append(seeds, enc)
			stream = append(stream, enc...)
		}
	}
	for _, h := range []ChunkHeader{{0, 0, 1}, {1, 2, 16}} {
		enc := encodeChunk(tb, h, make([]byte, h.Size))
		seeds = append(seeds, enc, enc[:len(enc)-1])
		stream = append(stream, enc...)
	}
	seeds = append(seeds, stream)
	for _, h := range hostileFilesFrames() {
		seeds = append(seeds, h.input[:min(len(h.input), maxSeed)])
	}
	return seeds
}
