package protocols

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
)

const goldenFilesDir = "testdata/files"

// goldenFile is a file or directory of the golden manifest, with its
// content: Text, or Pattern bytes of which byte i is i % 251 (the input of
// the official BLAKE3 test vectors), so that another implementation can
// recompute every hash from the JSON alone.
type goldenFile struct {
	Path    string `json:"path"`
	Dir     bool   `json:"dir,omitempty"`
	Mode    string `json:"mode"`
	Text    string `json:"text,omitempty"`
	Pattern int    `json:"pattern_len,omitempty"`
}

func (g goldenFile) content() []byte {
	if g.Pattern == 0 {
		return []byte(g.Text)
	}
	b := make([]byte, g.Pattern)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

var goldenFiles = []goldenFile{
	{Path: "docs", Dir: true, Mode: "0755"},
	{Path: "docs/hello.txt", Mode: "0644", Text: "hello, world\n"},
	{Path: "docs/empty", Mode: "0600"},
	{Path: "docs/Bilder", Dir: true, Mode: "0700"},
	{Path: "grüße.md", Mode: "0644", Text: "# Grüße\n"},
	{Path: "two chunks.bin", Mode: "0755", Pattern: ChunkSize + 1},
}

// goldenManifest builds the golden manifest from goldenFiles.
func goldenManifest(tb testing.TB) *Manifest {
	m := &Manifest{}
	for _, g := range goldenFiles {
		var mode uint32
		if _, err := fmt.Sscanf(g.Mode, "%o", &mode); err != nil {
			tb.Fatal(err)
		}
		e := Entry{Path: g.Path, Dir: true}
		if !g.Dir {
			e = fileOf(g.Path, g.content())
		}
		e.Mode = fs.FileMode(mode)
		m.Entries = append(m.Entries, e)
	}
	return m
}

type goldenFilesFrame struct {
	name  string
	frame FilesFrame
	data  []byte // a chunk's data
}

// goldenFilesFrames are the golden frame vectors. Run go test -run Golden
// -update to rewrite testdata/files.
func goldenFilesFrames(tb testing.TB) []goldenFilesFrame {
	mb := marshal(tb, goldenManifest(tb))
	cid := ContentID(mb)
	return []goldenFilesFrame{
		{"offer", FilesFrame{Offer: &FileOffer{TransferID: tid(0x00), Manifest: mb}}, nil},
		{"offer-ack", FilesFrame{OfferAck: &FileOfferAck{TransferID: tid(0x00)}}, nil},
		{"fetch-push", FilesFrame{Fetch: &FileFetch{TransferID: tid(0x00), ContentID: cid, WantManifest: true}}, nil},
		{"fetch-ticket", FilesFrame{Fetch: &FileFetch{ContentID: cid, Secret: counting(0xa0, 32)}}, nil},
		{"serving", FilesFrame{Serving: &FileServing{Manifest: mb}}, nil},
		{"serving-empty", FilesFrame{Serving: &FileServing{}}, nil},
		{"request", FilesFrame{Request: &ChunkRequest{Entry: 5, First: 0, Count: 2}}, nil},
		{"chunk", FilesFrame{Chunk: &ChunkHeader{Entry: 1, Index: 0, Size: 13}}, []byte("hello, world\n")},
		{"complete", FilesFrame{Complete: &FileComplete{Root: goldenManifest(tb).Root()}}, nil},
		{"done", FilesFrame{Done: &FileDone{}}, nil},
		{"reject", FilesFrame{Reject: &FileReject{TransferID: tid(0x00)}}, nil},
		{"error", filesErr(CodeUnknownTransfer, ""), nil},
		{"error-message", filesErr(CodeSourceChanged, "docs/hello.txt changed"), nil},
	}
}

// filesFrameJSON is the decoded form of a frame, stored next to its vector.
func filesFrameJSON(tb testing.TB, f FilesFrame, data []byte) []byte {
	tb.Helper()
	x := hex.EncodeToString
	var j map[string]any
	switch {
	case f.Offer != nil:
		j = map[string]any{"kind": "offer", "version": FilesVersion, "transfer_id_hex": x(f.Offer.TransferID[:]),
			"manifest_hex": x(f.Offer.Manifest), "content_id_hex": x(hashBytes(ContentID(f.Offer.Manifest)))}
	case f.OfferAck != nil:
		j = map[string]any{"kind": "offer_ack", "transfer_id_hex": x(f.OfferAck.TransferID[:])}
	case f.Fetch != nil:
		j = map[string]any{"kind": "fetch", "version": FilesVersion, "transfer_id_hex": x(f.Fetch.TransferID[:]),
			"content_id_hex": x(f.Fetch.ContentID[:]), "secret_hex": x(f.Fetch.Secret),
			"want_manifest": f.Fetch.WantManifest}
	case f.Serving != nil:
		j = map[string]any{"kind": "serving", "manifest_hex": x(f.Serving.Manifest)}
	case f.Request != nil:
		j = map[string]any{"kind": "request", "entry": f.Request.Entry, "first": f.Request.First, "count": f.Request.Count}
	case f.Chunk != nil:
		j = map[string]any{"kind": "chunk", "entry": f.Chunk.Entry, "index": f.Chunk.Index, "size": f.Chunk.Size,
			"data_hex": x(data)}
	case f.Complete != nil:
		j = map[string]any{"kind": "complete", "root_hex": x(f.Complete.Root[:])}
	case f.Done != nil:
		j = map[string]any{"kind": "done"}
	case f.Reject != nil:
		j = map[string]any{"kind": "reject", "transfer_id_hex": x(f.Reject.TransferID[:])}
	case f.Error != nil:
		j = map[string]any{"kind": "error", "code": f.Error.Code, "code_name": f.Error.Code.String(),
			"message": f.Error.Message}
	}
	return indentJSON(tb, j)
}

func hashBytes(h Hash) []byte { return h[:] }

func indentJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

func TestGoldenFilesFrames(t *testing.T) {
	for _, g := range goldenFilesFrames(t) {
		t.Run(g.name, func(t *testing.T) {
			var enc []byte
			if g.frame.Chunk != nil {
				enc = encodeChunk(t, *g.frame.Chunk, g.data)
			} else {
				enc = encodeFiles(t, g.frame)
			}
			base := filepath.Join(goldenFilesDir, g.name)
			if *update {
				writeGolden(t, base+".hex", []byte(hex.EncodeToString(enc)+"\n"))
				writeGolden(t, base+".json", filesFrameJSON(t, g.frame, g.data))
			}
			raw := readGoldenHex(t, base+".hex")
			if !bytes.Equal(enc, raw) {
				t.Errorf("encoder: wrote %x, golden file has %x (run with -update if intended)", enc, raw)
			}
			got, data := readGoldenFrame(t, raw)
			want := readGolden(t, base+".json")
			if j := filesFrameJSON(t, got, data); !bytes.Equal(j, want) {
				t.Errorf("decoder: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
			if j := filesFrameJSON(t, g.frame, g.data); !bytes.Equal(j, want) {
				t.Errorf("vector: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
		})
	}
}

// readGoldenFrame reads the one frame (and a chunk's data) in raw.
func readGoldenFrame(t *testing.T, raw []byte) (FilesFrame, []byte) {
	t.Helper()
	r := NewFilesReader(bytes.NewReader(raw))
	f, err := r.Read(MaxFilesFrame)
	if err != nil {
		t.Fatalf("decoder: %v", err)
	}
	var data []byte
	if f.Chunk != nil {
		data = make([]byte, f.Chunk.Size)
		if err := r.ReadChunkData(data); err != nil {
			t.Fatalf("decoder: %v", err)
		}
	}
	if _, err := r.Read(MaxFilesFrame); err != io.EOF {
		t.Fatalf("decoder: after the frame, err = %v, want io.EOF", err)
	}
	return f, data
}

// goldenManifestJSON is the decoded form of the golden manifest: its
// files as goldenFiles describes them, and every hash.
func goldenManifestJSON(tb testing.TB, m *Manifest, b []byte) []byte {
	type entry struct {
		goldenFile
		Size   int64    `json:"size"`
		Chunks []string `json:"chunks_hex"`
		Root   string   `json:"root_hex"`
	}
	var entries []entry
	for i, e := range m.Entries {
		g := goldenFiles[i]
		ej := entry{goldenFile: g, Size: e.Size, Chunks: []string{}, Root: hex.EncodeToString(hashBytes(e.Root()))}
		ej.Path, ej.Dir, ej.Mode = e.Path, e.Dir, fmt.Sprintf("%04o", uint32(e.Mode))
		for _, c := range e.Chunks {
			ej.Chunks = append(ej.Chunks, hex.EncodeToString(c[:]))
		}
		entries = append(entries, ej)
	}
	return indentJSON(tb, map[string]any{"version": manifestVersion, "chunk_size": ChunkSize, "entries": entries,
		"root_hex": hex.EncodeToString(hashBytes(m.Root())), "content_id_hex": hex.EncodeToString(hashBytes(ContentID(b))),
		"bytes": len(b)})
}

func TestGoldenManifest(t *testing.T) {
	base := filepath.Join(goldenFilesDir, "manifest")
	enc := marshal(t, goldenManifest(t))
	if *update {
		writeGolden(t, base+".hex", []byte(hex.EncodeToString(enc)+"\n"))
		writeGolden(t, base+".json", goldenManifestJSON(t, goldenManifest(t), enc))
	}
	raw := readGoldenHex(t, base+".hex")
	if !bytes.Equal(enc, raw) {
		t.Errorf("Marshal: wrote %x, golden file has %x (run with -update if intended)", enc, raw)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	want := readGolden(t, base+".json")
	if j := goldenManifestJSON(t, m, raw); !bytes.Equal(j, want) {
		t.Errorf("ParseManifest: got\n%s\nwant (%s.json)\n%s", j, base, want)
	}
}

// TestGoldenFilesFiles fails on files in testdata/files that no vector owns.
func TestGoldenFilesFiles(t *testing.T) {
	want := []string{"manifest.hex", "manifest.json"}
	for _, g := range goldenFilesFrames(t) {
		want = append(want, g.name+".hex", g.name+".json")
	}
	checkGoldenDir(t, goldenFilesDir, want)
}

// goldenFilesInputs returns the committed golden frames and manifest (fuzz
// seeds).
func goldenFilesInputs(tb testing.TB) [][]byte {
	var out [][]byte
	for _, g := range goldenFilesFrames(tb) {
		out = append(out, readGoldenHex(tb, filepath.Join(goldenFilesDir, g.name+".hex")))
	}
	return out
}

// TestFilesDocExample checks the bytes of the example in the package
// documentation (section "File transfer").
func TestFilesDocExample(t *testing.T) {
	req := encodeFiles(t, FilesFrame{Request: &ChunkRequest{Entry: 5, First: 0, Count: 2}})
	chunk := encodeChunk(t, ChunkHeader{Entry: 5, Index: 0, Size: 13}, []byte("hello, world\n"))
	if got, want := hex.EncodeToString(req), "062a0408051802"; got != want {
		t.Errorf("request: %s, the documentation says %s", got, want)
	}
	if got, want := hex.EncodeToString(chunk), "0632040805180d"+"68656c6c6f2c20776f726c640a"; got != want {
		t.Errorf("chunk: %s, the documentation says %s", got, want)
	}
}
