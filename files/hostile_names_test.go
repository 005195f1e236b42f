package files

import (
	"testing"

	"github.com/kithnet/kith/protocols"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawEntry is a manifest entry encoded by hand, so that a test can send what
// protocols.Manifest.Marshal refuses to write.
type rawEntry struct {
	path string
	dir  bool
	size int64
	mode uint32
}

// rawManifest encodes entries as a kith.files.v1.Manifest with correct
// chunk hashes (of zero bytes) and roots, whatever the names.
func rawManifest(entries ...rawEntry) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, protocols.ChunkSize)
	var roots []byte
	for _, e := range entries {
		pe := protocols.Entry{Path: e.path, Dir: e.dir, Size: e.size}
		var chunks []byte
		for i := range protocols.ChunkCount(min(e.size, 4*protocols.ChunkSize)) {
			n := min(e.size-i*protocols.ChunkSize, protocols.ChunkSize)
			h := protocols.HashChunk(make([]byte, n))
			pe.Chunks = append(pe.Chunks, h)
			chunks = append(chunks, h[:]...)
		}
		root := pe.Root()
		roots = append(roots, root[:]...)
		var eb []byte
		eb = protowire.AppendTag(eb, 1, protowire.BytesType)
		eb = protowire.AppendString(eb, e.path)
		if e.dir {
			eb = protowire.AppendTag(eb, 2, protowire.VarintType)
			eb = protowire.AppendVarint(eb, 1)
		}
		if e.size > 0 {
			eb = protowire.AppendTag(eb, 3, protowire.VarintType)
			eb = protowire.AppendVarint(eb, uint64(e.size))
		}
		eb = protowire.AppendTag(eb, 4, protowire.VarintType)
		eb = protowire.AppendVarint(eb, uint64(e.mode))
		if len(chunks) > 0 {
			eb = protowire.AppendTag(eb, 5, protowire.BytesType)
			eb = protowire.AppendBytes(eb, chunks)
		}
		eb = protowire.AppendTag(eb, 6, protowire.BytesType)
		eb = protowire.AppendBytes(eb, root[:])
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, eb)
	}
	root := protocols.HashChunk(roots) // BLAKE3 of the entry roots
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendBytes(b, root[:])
}

// TestHostileOfferedNames: offers whose manifests break the naming rules
// are refused with MALFORMED (or TOO_LARGE) before anything is stored, so
// no prompt is ever shown for them and nothing can be written.
func TestHostileOfferedNames(t *testing.T) {
	file := func(p string) rawEntry { return rawEntry{path: p, size: 10, mode: 0o644} }
	dir := func(p string) rawEntry { return rawEntry{path: p, dir: true, mode: 0o755} }
	for _, tc := range []struct {
		name    string
		entries []rawEntry
	}{
		{"dot-dot", []rawEntry{file("../x")}},
		{"dot-dot inside", []rawEntry{dir("a"), file("a/../../x")}},
		{"absolute", []rawEntry{file("/etc/passwd")}},
		{"backslash", []rawEntry{file(`C:\x`)}},
		{"unc", []rawEntry{file(`\\?\x`)}},
		{"double slash", []rawEntry{file("//host/x")}},
		{"NUL", []rawEntry{file("a\x00b")}},
		{"newline", []rawEntry{file("a\nb")}},
		{"escape sequence", []rawEntry{file("\x1b[31mred")}},
		{"right-to-left override", []rawEntry{file("txt.\u202eexe")}},
		{"empty", []rawEntry{file("")}},
		{"dot", []rawEntry{file(".")}},
		{"device name", []rawEntry{file("CON")}},
		{"device name with extension", []rawEntry{file("nul.txt")}},
		{"trailing dot", []rawEntry{file("name.")}},
		{"trailing space", []rawEntry{file("name ")}},
		{"our partial suffix", []rawEntry{file("x.kith-partial")}},
		{"too long", []rawEntry{file(string(make([]byte, 300)))}},
		{"duplicate", []rawEntry{file("a.txt"), file("a.txt")}},
		{"equal up to case", []rawEntry{file("Readme.md"), file("README.md")}},
		{"equal up to NFC", []rawEntry{file("caf\u00e9"), file("cafe\u0301")}},
		{"directory collides with a file", []rawEntry{file("a"), dir("a")}},
		{"child before its directory", []rawEntry{file("a/x"), dir("a")}},
		{"setuid", []rawEntry{{path: "x", size: 1, mode: 0o4755}}},
		{"absurd size", []rawEntry{{path: "x", size: 1 << 62, mode: 0o644}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newNode(t, Config{})
			f := newFakeSender(t, 10, nil)
			ans := f.offer(t, b, rawManifest(tc.entries...))
			if ans.Error == nil || ans.Error.Code != protocols.CodeMalformed && ans.Error.Code != protocols.CodeTooLarge {
				t.Errorf("answered %+v; want MALFORMED or TOO_LARGE", ans)
			}
			if ts, _ := b.store.Transfers(t.Context(), Filter{}); len(ts) != 0 {
				t.Errorf("%d transfers stored for a hostile offer", len(ts))
			}
		})
	}
	// The encoder is right: a clean manifest built the same way is taken.
	b := newNode(t, Config{})
	f := newFakeSender(t, 10, nil)
	if ans := f.offer(t, b, rawManifest(dir("docs"), file("docs/a.txt"))); ans.OfferAck == nil {
		t.Fatalf("a clean hand-made manifest was answered %+v", ans)
	}
}
