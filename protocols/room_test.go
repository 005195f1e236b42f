package protocols

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestValidRoomName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"lobby", true}, {"0", true}, {"a-b_c.d", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"Lobby", false}, {"-a", false},
		{".", false}, {"..", false}, {"a/b", false}, {"a b", false}, {"é", false}, {"a\x00", false},
	} {
		if err := ValidRoomName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidRoomName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// roomField appends a protobuf field to b.
func roomField(b []byte, num protowire.Number, v any) []byte {
	switch v := v.(type) {
	case uint64:
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	case string:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, v)
	}
	panic(fmt.Sprintf("roomField: %T", v))
}

// rawRoom is a hand-encoded version 1 RoomMessage (no clock) with the
// given fields.
func rawRoom(version uint64, room string, seq uint64, sentAt uint64, text string) []byte {
	var b []byte
	b = roomField(b, 1, version)
	b = roomField(b, 2, room)
	b = roomField(b, 3, seq)
	b = roomField(b, 4, sentAt)
	return roomField(b, 5, text)
}

// rawRoomClock is rawRoom with a clock (field 6).
func rawRoomClock(version uint64, room string, seq, sentAt, clock uint64, text string) []byte {
	return roomField(rawRoom(version, room, seq, sentAt, text), 6, clock)
}

func TestHostileRoomMessages(t *testing.T) {
	const ms = 1767225600000
	neg := uint64(1<<64 - 1) // int64 -1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"too large", make([]byte, MaxRoomPayload+1), ErrFrameTooLarge},
		{"empty", nil, ErrUnsupportedVersion},
		{"version 0", rawRoom(0, "a", 1, ms, ""), ErrUnsupportedVersion},
		{"version 3", rawRoomClock(3, "a", 1, ms, ms, ""), ErrUnsupportedVersion},
		{"version 2 without a clock", rawRoom(2, "a", 1, ms, ""), ErrMalformed},
		{"clock before sent_at", rawRoomClock(2, "a", 1, ms, ms-1, ""), ErrMalformed},
		{"clock negative", rawRoomClock(2, "a", 1, ms, neg, ""), ErrMalformed},
		{"clock past year 9999", rawRoomClock(2, "a", 1, ms, MaxRoomClock+1, ""), ErrMalformed},
		{"clock 2^63-1", rawRoomClock(2, "a", 1, ms, 1<<63-1, ""), ErrMalformed},
		{"sent_at past year 9999", rawRoomClock(2, "a", 1, MaxRoomClock+1, MaxRoomClock+1, ""), ErrMalformed},
		{"clock as bytes", roomField(rawRoom(2, "a", 1, ms, ""), 6, "x"), ErrMalformed},
		{"seq 0", rawRoom(1, "a", 0, ms, ""), ErrMalformed},
		{"seq 2^63, above what stores hold", rawRoom(1, "a", 1<<63, ms, ""), ErrMalformed},
		{"sent_at 0", rawRoom(1, "a", 1, 0, ""), ErrMalformed},
		{"sent_at negative", rawRoom(1, "a", 1, neg, ""), ErrMalformed},
		{"bad room", rawRoom(1, "A", 1, ms, ""), ErrMalformed},
		{"no room", rawRoom(1, "", 1, ms, ""), ErrMalformed},
		{"text too long", rawRoom(1, "a", 1, ms, strings.Repeat("x", MaxRoomText+1)), ErrFrameTooLarge},
		{"text not UTF-8", rawRoom(1, "a", 1, ms, "\xff"), ErrMalformed},
		{"version as bytes", roomField(rawRoom(1, "a", 1, ms, "")[2:], 1, "x"), ErrMalformed},
		{"truncated", rawRoom(1, "a", 1, ms, "hello")[:10], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRoomMessage(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRoomMessageRoundTrip(t *testing.T) {
	m := RoomMessage{Room: "lobby", Seq: 42, SentAt: time.UnixMilli(1767225600123).UTC(), Clock: 1767225600500, Text: "hello"}
	b, err := EncodeRoomMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRoomMessage(append(b, roomField(nil, 99, "future field")...))
	if err != nil || got != m {
		t.Fatalf("got %+v, %v; want %+v (unknown fields are ignored)", got, err, m)
	}
	if _, err := EncodeRoomMessage(RoomMessage{Room: "lobby", SentAt: m.SentAt, Clock: m.Clock}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode with seq 0: err = %v, want ErrMalformed", err)
	}
	if _, err := EncodeRoomMessage(RoomMessage{Room: "lobby", Seq: 1, SentAt: m.SentAt}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode without a clock: err = %v, want ErrMalformed", err)
	}
}

// A version 1 message (written before clocks) is read with its sent_at as
// its clock, whatever its field 6 holds (nothing, in version 1).
func TestRoomMessageVersion1(t *testing.T) {
	const ms = 1767225600000
	for name, b := range map[string][]byte{
		"plain":                rawRoom(1, "lobby", 3, ms, "old"),
		"with a stray field 6": rawRoomClock(1, "lobby", 3, ms, 1<<62, "old"),
	} {
		got, err := DecodeRoomMessage(b)
		want := RoomMessage{Room: "lobby", Seq: 3, SentAt: time.UnixMilli(ms).UTC(), Clock: ms, Text: "old"}
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
}

func TestRoomCheckTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{now.Add(-24 * time.Hour), true}, {now.Add(24 * time.Hour), true}, {now.Add(MaxRoomClockLead), true},
		{now.Add(MaxRoomClockLead + time.Millisecond), false}, {time.UnixMilli(MaxRoomClock), false},
	} {
		m := RoomMessage{SentAt: now, Clock: tc.at.UnixMilli()}
		if err := m.CheckTime(now); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrRoomClockAhead)) {
			t.Errorf("CheckTime(%s) = %v, want ok=%v", tc.at, err, tc.ok)
		}
	}
}

// NextRoomClock: at least the author's clock, after its previous message,
// after what it holds up to MaxRoomClockFollow ahead, at most that far
// ahead for what it holds further, and never past MaxRoomClock.
func TestNextRoomClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := now.UnixMilli()
	f := RoomClockFollows(now)
	if f != w+MaxRoomClockFollow.Milliseconds() {
		t.Fatalf("RoomClockFollows = %d, want %d", f, w+MaxRoomClockFollow.Milliseconds())
	}
	for _, tc := range []struct {
		name                 string
		prev, held, followed int64
		want                 int64
	}{
		{"first message, nothing held", 0, 0, 0, w},
		{"held and previous behind the clock", w - 10, w - 5, w - 5, w},
		{"previous in the same millisecond", w, w, w, w + 1},
		{"a message held 1 h ahead", 0, w + 3600_000, w + 3600_000, w + 3600_001},
		{"a message held 1 day ahead", w - 1, w + 86400_000, w + 86400_000, w + 86400_001},
		{"one held exactly MaxRoomClockFollow ahead", 0, f, f, f + 1},
		{"one held further, nothing else ahead", 0, f + 5, w - 3, f},
		{"one held further, and one followed at the bound", 0, f + 5, f, f + 1},
		{"followed passed above the bound is taken as the bound", 0, f + 5, f + 5, f + 1},
		{"previous past the bound (clock set back)", f + 7, f + 9, w, f + 8},
		{"everything at the maximum", MaxRoomClock, MaxRoomClock, MaxRoomClock, MaxRoomClock},
		{"overflowing inputs", 1<<63 - 1, 1<<63 - 1, 1<<63 - 1, MaxRoomClock},
	} {
		if got := NextRoomClock(tc.prev, tc.held, tc.followed, now); got != tc.want {
			t.Errorf("%s: NextRoomClock(%d, %d, %d) = %d, want %d", tc.name, tc.prev, tc.held, tc.followed, got, tc.want)
		}
	}
	if got := NextRoomClock(0, 0, 0, time.UnixMilli(-5)); got != 1 {
		t.Errorf("NextRoomClock before 1970 = %d, want 1", got)
	}
	if got := NextRoomClock(0, 1<<63-1, 1<<63-1, time.UnixMilli(MaxRoomClock+1000)); got != MaxRoomClock {
		t.Errorf("NextRoomClock past year 9999 = %d, want MaxRoomClock", got)
	}
}

func TestRoomSealing(t *testing.T) {
	key, err := DeriveRoomKey("team", []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := RoomKeyFromBytes(bytes.Repeat([]byte{1}, RoomKeySize))
	topic, _ := RoomTopic("team", key)
	m := RoomMessage{Room: "team", Seq: 1, SentAt: time.UnixMilli(1).UTC(), Clock: 1, Text: "x"}
	p, err := EncodeRoomPayload(m, key, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeRoomPayload(p, "team", key, topic); err != nil || got != m {
		t.Fatalf("DecodeRoomPayload = %+v, %v", got, err)
	}
	flipped := bytes.Clone(p)
	flipped[len(flipped)-1] ^= 1
	plain, _ := EncodeRoomMessage(m)
	for name, tc := range map[string]struct {
		p     []byte
		key   *RoomKey
		topic string
	}{
		"other key": {p, other, topic}, "other topic": {p, key, topic + "x"},
		"altered": {flipped, key, topic}, "short": {p[:39], key, topic},
		"unsealed": {plain, key, topic},
	} {
		if _, err := DecodeRoomPayload(tc.p, "team", tc.key, tc.topic); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if s := fmt.Sprintf("%v %s %#v %+v", key, key, key, key); strings.Contains(s, fmt.Sprintf("%x", key.Bytes()[:4])) {
		t.Errorf("formatting shows the key: %s", s)
	}
}

func TestRoomKeyAndTopic(t *testing.T) {
	if _, err := DeriveRoomKey("team", []byte("short")); err == nil {
		t.Error("a 5-byte secret is accepted")
	}
	a, _ := DeriveRoomKey("team", []byte("the secret"))
	b, _ := DeriveRoomKey("team2", []byte("the secret"))
	if a.Equal(b) {
		t.Error("two room names with one secret give the same key")
	}
	ta, _ := RoomTopic("team", a)
	if !strings.HasPrefix(ta, RoomTopicPrefix) || strings.Contains(ta, "team") || len(ta) != len(RoomTopicPrefix)+64 {
		t.Errorf("private topic %q", ta)
	}
	if to, _ := RoomTopic("team", nil); to != "/kith/room/1/open/team" {
		t.Errorf("open topic %q", to)
	}
}
