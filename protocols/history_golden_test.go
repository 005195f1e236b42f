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

const goldenHistoryDir = "testdata/history"

type goldenHistory struct {
	name  string
	frame HistoryFrame
}

// goldenHistoryFrames are the golden vectors, one per frame kind and a few
// variants. Run go test -run Golden -update to rewrite testdata/history.
// The batch's messages are opaque to the framing; these are short
// stand-ins, not signed pubsub messages.
func goldenHistoryFrames(tb testing.TB) []goldenHistory {
	return []goldenHistory{
		{"request", HistoryFrame{Request: &HistoryRequest{Topic: "/kith/room/1/open/lobby",
			Have: []HistoryHave{{Author: testPeer(tb, 1), Through: 7}, {Author: testPeer(tb, 2), Through: 0}}, Max: 2000}}},
		{"request-held", HistoryFrame{Request: &HistoryRequest{Topic: "/kith/room/1/open/lobby",
			Have: []HistoryHave{{Author: testPeer(tb, 1), Through: 7, Held: []HistoryRange{{From: 9, To: 12}, {From: 20, To: 20}}},
				{Author: testPeer(tb, 2), Through: 0, Held: []HistoryRange{{From: 2, To: 5}}}}, Max: 128}}},
		{"request-latest", HistoryFrame{Request: &HistoryRequest{Topic: "/kith/room/1/open/lobby",
			Have: []HistoryHave{{Author: testPeer(tb, 1), Through: 0, Held: []HistoryRange{{From: 40, To: 45}}}},
			Max:  128, Since: 1_795_000_000_000, Latest: true}}},
		{"request-private", HistoryFrame{Request: &HistoryRequest{
			Topic: RoomTopicPrefix + strings.Repeat("0f", 32), Max: 1}}},
		{"batch", HistoryFrame{Batch: &HistoryBatch{Messages: [][]byte{[]byte("first"), {0x0a, 0x00}}}}},
		{"end", HistoryFrame{End: &HistoryEnd{}}},
		{"end-more", HistoryFrame{End: &HistoryEnd{More: true}}},
		{"error", HistoryFrame{Error: &RemoteError{Code: CodeNotAllowed, Message: "not a member of this room"}}},
	}
}

// historyFrameJSON is the decoded form of a frame, stored next to its
// vector.
func historyFrameJSON(tb testing.TB, f HistoryFrame) []byte {
	tb.Helper()
	var j map[string]any
	switch {
	case f.Request != nil:
		have := []map[string]any{}
		for _, h := range f.Request.Have {
			jh := map[string]any{"author": h.Author.String(), "through": h.Through}
			if len(h.Held) > 0 {
				var held [][2]uint64
				for _, r := range h.Held {
					held = append(held, [2]uint64{r.From, r.To})
				}
				jh["held"] = held
			}
			have = append(have, jh)
		}
		j = map[string]any{"kind": "request", "version": HistoryVersion, "topic": f.Request.Topic,
			"have": have, "max_messages": f.Request.Max}
		if f.Request.Since != 0 {
			j["since"] = f.Request.Since
		}
		if f.Request.Latest {
			j["latest"] = true
		}
	case f.Batch != nil:
		var msgs []string
		for _, m := range f.Batch.Messages {
			msgs = append(msgs, hex.EncodeToString(m))
		}
		j = map[string]any{"kind": "batch", "messages_hex": msgs}
	case f.End != nil:
		j = map[string]any{"kind": "end", "more": f.End.More}
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

func encodeHistory(tb testing.TB, f HistoryFrame) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := NewHistoryWriter(&buf).Write(f); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenHistoryFrames(t *testing.T) {
	for _, g := range goldenHistoryFrames(t) {
		t.Run(g.name, func(t *testing.T) {
			enc := encodeHistory(t, g.frame)
			base := filepath.Join(goldenHistoryDir, g.name)
			if *update {
				writeGolden(t, base+".hex", []byte(hex.EncodeToString(enc)+"\n"))
				writeGolden(t, base+".json", historyFrameJSON(t, g.frame))
			}
			raw, err := hex.DecodeString(strings.TrimSpace(string(readGolden(t, base+".hex"))))
			if err != nil {
				t.Fatalf("%s.hex: %v", base, err)
			}
			if !bytes.Equal(enc, raw) {
				t.Errorf("encoder: wrote %x, golden file has %x (run with -update if intended)", enc, raw)
			}
			r := NewHistoryReader(bytes.NewReader(raw))
			got, err := r.Read(MaxHistoryFrame)
			if err != nil {
				t.Fatalf("decoder: %v", err)
			}
			if _, err := r.Read(MaxHistoryFrame); err != io.EOF {
				t.Fatalf("decoder: after the frame, err = %v, want io.EOF", err)
			}
			want := readGolden(t, base+".json")
			if j := historyFrameJSON(t, got); !bytes.Equal(j, want) {
				t.Errorf("decoder: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
		})
	}
}

// TestGoldenHistoryFiles fails on files in testdata/history that no vector
// owns.
func TestGoldenHistoryFiles(t *testing.T) {
	var want []string
	for _, g := range goldenHistoryFrames(t) {
		want = append(want, g.name+".hex", g.name+".json")
	}
	checkGoldenDir(t, goldenHistoryDir, want)
}

// goldenHistoryInputs returns the committed golden frames (fuzz seeds).
func goldenHistoryInputs(tb testing.TB) [][]byte {
	var out [][]byte
	for _, g := range goldenHistoryFrames(tb) {
		out = append(out, readGoldenHex(tb, filepath.Join(goldenHistoryDir, g.name+".hex")))
	}
	return out
}
