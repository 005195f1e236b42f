package files_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/protocols"
)

// A transfer without the network: the sender builds a Source, the receiver
// plans names and writes every verified chunk into a Sink, then finalizes.
func Example() {
	from, to := mkdirTemp(), mkdirTemp()
	defer os.RemoveAll(from)
	defer os.RemoveAll(to)
	os.MkdirAll(filepath.Join(from, "album", "2024"), 0o755)
	os.WriteFile(filepath.Join(from, "album", "2024", "notes.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(to, "album"), []byte("already here"), 0o644)

	// Sender.
	src, err := files.BuildSource(context.Background(), []string{filepath.Join(from, "album")}, files.SourceOptions{
		Warn: func(msg string) { fmt.Println("warning:", msg) },
	})
	if err != nil {
		log.Fatal(err)
	}
	r := src.NewReader()
	defer r.Close()

	// Receiver, after checking the manifest it was offered.
	m, err := protocols.ParseManifest(src.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	if err := files.CheckSpace(to, m.TotalSize()); err != nil {
		log.Fatal(err)
	}
	names, err := files.PlanNames(to, m, false)
	if err != nil {
		log.Fatal(err)
	}
	sink, err := files.OpenSink(to, m, names, false)
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	buf := make([]byte, protocols.ChunkSize)
	for i, e := range m.Entries {
		for k, want := range e.Chunks {
			data, err := r.ReadChunk(i, uint64(k), buf) // over the network, in kith
			if err != nil || protocols.HashChunk(data) != want {
				log.Fatalf("chunk %d of %s: %v", k, e.Path, err)
			}
			if err := sink.WriteChunk(i, uint64(k), data); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := sink.Sync(); err != nil { // now the chunks may be recorded as verified
		log.Fatal(err)
	}
	if err := sink.Finalize(); err != nil {
		log.Fatal(err)
	}
	for _, p := range sink.FinalPaths() {
		b, _ := os.ReadFile(filepath.Join(p, "2024", "notes.txt"))
		fmt.Printf("%s/2024/notes.txt: %s\n", filepath.Base(p), b)
	}
	// Output:
	// album (1)/2024/notes.txt: hello
}

func mkdirTemp() string {
	d, err := os.MkdirTemp("", "kith-example")
	if err != nil {
		log.Fatal(err)
	}
	return d
}
