package protocols

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goldenRoomDir = "testdata/rooms"

// goldenRoom is one room payload vector: an open room's message, or a
// private room's sealed one (secret set), sealed with a fixed nonce.
type goldenRoom struct {
	name   string
	msg    RoomMessage
	secret string // private room when set
	nonce  byte   // every byte of the nonce
	// v1: a version 1 message, as kith wrote before clocks (no field 6;
	// msg.Clock, its sent_at, is what a reader takes it to be).
	v1 bool
}

// goldenRooms are the golden vectors. Run go test -run Golden -update to
// rewrite testdata/rooms.
func goldenRooms() []goldenRoom {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := at.UnixMilli()
	return []goldenRoom{
		// The author's clock: nothing held is ahead of it.
		{name: "open", msg: RoomMessage{Room: "lobby", Seq: 1, SentAt: at, Clock: ms, Text: "hi"}},
		// A reply to a message stamped a day ahead of the replier's clock.
		{name: "open-unicode", msg: RoomMessage{Room: "team-a.b_c", Seq: 300, SentAt: at, Clock: ms + 86400_001,
			Text: "grüße 👋\nzweite Zeile"}},
		{name: "open-empty", msg: RoomMessage{Room: "0", Seq: MaxRoomSeq, SentAt: at, Clock: MaxRoomClock, Text: ""}},
		{name: "sealed", msg: RoomMessage{Room: "team", Seq: 7, SentAt: at, Clock: ms + 7, Text: "secret plans"},
			secret: "correct horse battery staple", nonce: 0x42},
		{name: "open-v1", msg: RoomMessage{Room: "lobby", Seq: 1, SentAt: at, Clock: ms, Text: "hi"}, v1: true},
	}
}

// payload builds g's payload, its topic and key (nil when open).
func (g goldenRoom) payload(tb testing.TB) ([]byte, string, *RoomKey) {
	tb.Helper()
	var key *RoomKey
	if g.secret != "" {
		var err error
		if key, err = DeriveRoomKey(g.msg.Room, []byte(g.secret)); err != nil {
			tb.Fatal(err)
		}
	}
	topic, err := RoomTopic(g.msg.Room, key)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := EncodeRoomMessage(g.msg)
	if err != nil {
		tb.Fatal(err)
	}
	if g.v1 {
		m := g.msg
		b = rawRoom(RoomVersionNoClock, m.Room, m.Seq, uint64(m.SentAt.UnixMilli()), m.Text)
	}
	if key != nil {
		var nonce [roomNonceSize]byte
		for i := range nonce {
			nonce[i] = g.nonce
		}
		b = key.sealNonce(topic, nonce, b)
	}
	return b, topic, key
}

// roomJSON is the decoded form of a vector, stored next to it.
func roomJSON(tb testing.TB, g goldenRoom, m RoomMessage, topic string, key *RoomKey) []byte {
	tb.Helper()
	j := map[string]any{"version": RoomVersion, "room": m.Room, "seq": m.Seq,
		"sent_at_ms": m.SentAt.UnixMilli(), "clock": m.Clock, "text": m.Text, "topic": topic}
	if g.v1 {
		j["version"] = RoomVersionNoClock
	}
	if key != nil {
		j["secret"] = g.secret
		j["key_hex"] = hex.EncodeToString(key.Bytes())
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

func TestGoldenRooms(t *testing.T) {
	for _, g := range goldenRooms() {
		t.Run(g.name, func(t *testing.T) {
			enc, topic, key := g.payload(t)
			base := filepath.Join(goldenRoomDir, g.name)
			if *update {
				writeGolden(t, base+".hex", []byte(hex.EncodeToString(enc)+"\n"))
				writeGolden(t, base+".json", roomJSON(t, g, g.msg, topic, key))
			}
			raw, err := hex.DecodeString(strings.TrimSpace(string(readGolden(t, base+".hex"))))
			if err != nil {
				t.Fatalf("%s.hex: %v", base, err)
			}
			if !bytes.Equal(enc, raw) {
				t.Errorf("encoder: wrote %x, golden file has %x (run with -update if intended)", enc, raw)
			}
			got, err := DecodeRoomPayload(raw, g.msg.Room, key, topic)
			if err != nil {
				t.Fatalf("decoder: %v", err)
			}
			want := readGolden(t, base+".json")
			if j := roomJSON(t, g, got, topic, key); !bytes.Equal(j, want) {
				t.Errorf("decoder: got\n%s\nwant (%s.json)\n%s", j, base, want)
			}
		})
	}
}

// TestGoldenRoomFiles fails on files in testdata/rooms that no vector owns.
func TestGoldenRoomFiles(t *testing.T) {
	want := []string{goldenRendezvousFile}
	for _, g := range goldenRooms() {
		want = append(want, g.name+".hex", g.name+".json")
	}
	checkGoldenDir(t, goldenRoomDir, want)
}

// goldenRoomInputs returns the committed golden payloads (fuzz seeds).
func goldenRoomInputs(tb testing.TB) [][]byte {
	var out [][]byte
	for _, g := range goldenRooms() {
		out = append(out, readGoldenHex(tb, filepath.Join(goldenRoomDir, g.name+".hex")))
	}
	return out
}
