package protocols

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

const goldenDMDir = "testdata/dm"

type goldenDM struct {
	name  string
	frame DMFrame
}

// goldenDMFrames are the golden vectors, one per frame kind and a few
// variants. Run go test -run Golden -update to rewrite testdata/dm.
func goldenDMFrames() []goldenDM {
	return []goldenDM{
		{"message", msgFrame(dmID(0x00), "hi")},
		{"message-unicode", msgFrame(dmID(0x10), "grüße 👋\nzweite Zeile")},
		{"message-empty", msgFrame(dmID(0x20), "")},
		{"ack", ackFrame(dmID(0x00))},
		{"error", errFrame(CodeNotAllowed, "not a contact")},
		{"error-no-message", errFrame(CodeInternal, "")},
	}
}

// dmFrameJSON is the decoded form of a frame, stored next to its vector. Map
// keys are sorted by encoding/json, so the output is deterministic.
func dmFrameJSON(tb testing.TB, f DMFrame) []byte {
	tb.Helper()
	var j map[string]any
	switch {
	case f.Message != nil:
		j = map[string]any{"kind": "message", "version": DMVersion, "id_hex": hex.EncodeToString(f.Message.ID[:]),
			"sent_at_ms": f.Message.SentAt.UnixMilli(), "text": f.Message.Text}
	case f.Ack != nil:
		j = map[string]any{"kind": "ack", "id_hex": hex.EncodeToString(f.Ack.ID[:])}
	case f.Error != nil:
		j = map[string]any{"kind": "error", "code": f.Error.Code, "code_name": f.Error.Code.String(),
			"message": f.Error.Message}
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

func TestGoldenDMFrames(t *testing.T) {
	for _, g := range goldenDMFrames() {
		t.Run(g.name, func(t *testing.T) {
			enc := encodeDM(t, g.frame)
			base := filepath.Join(goldenDMDir, g.name)
			if *update {
				writeGolden(t, base+".hex", []byte(hex.EncodeToString(enc)+"\n"))
				writeGolden(t, base+".json", dmFrameJSON(t, g.frame))
			}
			raw, err := hex.DecodeString(strings.TrimSpace(string(readGolden(t, base+".hex"))))
			if err != nil {
				t.Fatalf("%s.hex: %v", base, err)
			}
			if !bytes.Equal(enc, raw) {
				t.Errorf("encoder: wrote %x, golden file has %x (run with -update if intended)", enc, raw)
			}
			r := NewDMReader(bytes.NewReader(raw))
			got, err := r.Read()
			if err != nil {
				t.Fatalf("decoder: %v", err)
			}
			if _, err := r.Read(); err != io.EOF {
				t.Fatalf("decoder: after the frame, err = %v, want io.EOF", err)
			}
			want := readGolden(t, base+".json")
			if j := dmFrameJSON(t, got); !bytes.Equal(j, want) {
				t.Errorf("decoder: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
			if j := dmFrameJSON(t, g.frame); !bytes.Equal(j, want) {
				t.Errorf("vector: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
		})
	}
}

// TestGoldenDMFiles fails on files in testdata/dm that no vector owns.
func TestGoldenDMFiles(t *testing.T) {
	var want []string
	for _, g := range goldenDMFrames() {
		want = append(want, g.name+".hex", g.name+".json")
	}
	checkGoldenDir(t, goldenDMDir, want)
}

// goldenDMInputs returns the committed golden frames (fuzz seeds).
func goldenDMInputs(tb testing.TB) [][]byte {
	var out [][]byte
	for _, g := range goldenDMFrames() {
		out = append(out, readGoldenHex(tb, filepath.Join(goldenDMDir, g.name+".hex")))
	}
	return out
}
