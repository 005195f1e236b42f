package protocols_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/kithnet/kith/protocols"
)

// entryOf is how a sender describes a file it read: its size and the hash of
// each chunk.
func entryOf(path string, data []byte) protocols.Entry {
	e := protocols.Entry{Path: path, Size: int64(len(data)), Mode: 0o644}
	for off := 0; off < len(data); off += protocols.ChunkSize {
		e.Chunks = append(e.Chunks, protocols.HashChunk(data[off:min(off+protocols.ChunkSize, len(data))]))
	}
	return e
}

// The sender describes what it sends, encodes it, and names the transfer by
// the content ID of those bytes.
func ExampleManifest_Marshal() {
	m := protocols.Manifest{Entries: []protocols.Entry{
		{Path: "notes", Dir: true, Mode: 0o755},
		entryOf("notes/todo.txt", []byte("buy milk\n")),
	}}
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes, %d file, %d bytes of files\n", len(b), m.Files(), m.TotalSize())
	fmt.Printf("content ID %x\n", protocols.ContentID(b))

	// Marshal refuses what a receiver would refuse.
	m.Entries = append(m.Entries, entryOf("notes/TODO.txt", nil))
	_, err = m.Marshal()
	fmt.Println(err)
	// Output:
	// 179 bytes, 1 file, 9 bytes of files
	// content ID 848fb193828bce8540fd6ec0c10644cb69e9bbb3ae5bd5afa09cad19c5427432
	// protocols: invalid manifest: entry 2 ("notes/TODO.txt"): same path as entry 1 ("notes/todo.txt") on a file system that ignores case or normalization
}

// The receiver parses the manifest it was offered or served, and checks that
// it is the one it asked for.
func ExampleParseManifest() {
	sent, err := (&protocols.Manifest{Entries: []protocols.Entry{entryOf("photo.jpg", []byte("..."))}}).Marshal()
	if err != nil {
		panic(err)
	}
	want := protocols.ContentID(sent) // from the ticket, or the Offer

	m, err := protocols.ParseManifest(sent)
	if err != nil || protocols.ContentID(sent) != want {
		fmt.Println("refuse:", err)
		return
	}
	for i, e := range m.Entries {
		fmt.Printf("entry %d: %q, %d bytes, %d chunk\n", i, e.Path, e.Size, len(e.Chunks))
	}

	// A tampered manifest fails with a code to answer.
	sent[len(sent)-1] ^= 1 // in the manifest root
	_, err = protocols.ParseManifest(sent)
	fmt.Println(protocols.ErrorCodeFor(err), err)
	// Output:
	// entry 0: "photo.jpg", 3 bytes, 1 chunk
	// malformed protocols: invalid manifest: root does not match the entries' roots
}

func ExampleCheckPath() {
	for _, p := range []string{"docs/report.pdf", "../.ssh/authorized_keys", "docs/con.txt",
		"invoice\u202efdp.exe", "x.kith-partial"} {
		fmt.Println(protocols.CheckPath(p))
	}
	// Output:
	// <nil>
	// protocols: invalid path "../.ssh/authorized_keys": name ".." refers to a directory itself or its parent
	// protocols: invalid path "docs/con.txt": name "con.txt" is a device name on Windows
	// protocols: invalid path "invoice\u202efdp.exe": contains format character U+202E at byte 7
	// protocols: invalid path "x.kith-partial": ends with ".kith-partial", kith's suffix for files being received
}

func ExampleFoldPath() {
	fmt.Println(protocols.FoldPath("Fotos/Straße.JPG") == protocols.FoldPath("fotos/STRASSE.jpg"))
	fmt.Println(protocols.FoldPath("Fotos/Straße.JPG"))
	// Output:
	// true
	// fotos/strasse.jpg
}

// The sender's side of a fetch stream: answer each Request with its chunks,
// each header followed by the chunk's bytes.
func ExampleFilesWriter_WriteChunk() {
	file := bytes.Repeat([]byte("x"), protocols.ChunkSize+10) // entry 0 of the manifest
	m := protocols.Manifest{Entries: []protocols.Entry{entryOf("x.bin", file)}}

	var in, out bytes.Buffer // stand in for the stream
	_ = protocols.NewFilesWriter(&in).Write(protocols.FilesFrame{Request: &protocols.ChunkRequest{Entry: 0, First: 0, Count: 2}})

	r, w := protocols.NewFilesReader(&in), protocols.NewFilesWriter(&out)
	f, err := r.Read(protocols.MaxFilesControlFrame)
	if err != nil || f.Request == nil {
		panic(err)
	}
	if err := m.CheckRequest(*f.Request); err != nil {
		_ = w.Write(protocols.FilesFrame{Error: &protocols.RemoteError{Code: protocols.ErrorCodeFor(err)}})
		return
	}
	e := &m.Entries[f.Request.Entry]
	for i := f.Request.First; i < f.Request.First+uint64(f.Request.Count); i++ {
		off, n := int64(i)*protocols.ChunkSize, e.ChunkLen(int64(i))
		h := protocols.ChunkHeader{Entry: f.Request.Entry, Index: i, Size: uint32(n)}
		if err := w.WriteChunk(h, file[off:off+int64(n)]); err != nil {
			panic(err)
		}
	}
	fmt.Printf("wrote %d bytes for %d bytes of chunks\n", out.Len(), len(file))
	// Output:
	// wrote 1048600 bytes for 1048586 bytes of chunks
}

// The receiver's side: read each chunk's header and bytes, and check them
// against the manifest before it keeps them.
func ExampleFilesReader_ReadChunkData() {
	file := []byte("hello, world\n")
	m := protocols.Manifest{Entries: []protocols.Entry{entryOf("hello.txt", file)}}
	var stream bytes.Buffer
	w := protocols.NewFilesWriter(&stream)
	_ = w.WriteChunk(protocols.ChunkHeader{Entry: 0, Index: 0, Size: uint32(len(file))}, file)
	_ = w.WriteChunk(protocols.ChunkHeader{Entry: 0, Index: 0, Size: 5}, []byte("hello")) // a broken sender

	r := protocols.NewFilesReader(&stream)
	buf := make([]byte, protocols.ChunkSize)
	for {
		f, err := r.Read(protocols.MaxFilesControlFrame)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || f.Chunk == nil {
			panic(err)
		}
		if err := m.CheckChunk(*f.Chunk); err != nil { // in kith: also that it was requested, in order
			fmt.Println("reset the stream:", err)
			break
		}
		data := buf[:f.Chunk.Size]
		if err := r.ReadChunkData(data); err != nil {
			panic(err)
		}
		ok := protocols.HashChunk(data) == m.Entries[f.Chunk.Entry].Chunks[f.Chunk.Index]
		fmt.Printf("chunk %d of entry %d: %d bytes, verified %t\n", f.Chunk.Index, f.Chunk.Entry, len(data), ok)
	}
	// Output:
	// chunk 0 of entry 0: 13 bytes, verified true
	// reset the stream: protocols: malformed frame: chunk 0 of entry 0 is 5 bytes; it must be 13
}
