package protocols

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeRoomMessage decodes arbitrary bytes. It must not panic; every
// error wraps a sentinel; an accepted message has a clock from its sent_at
// to MaxRoomClock, encodes again (as version 2, a version 1 message with
// its sent_at as clock), and that encoding decodes to the same message.
func FuzzDecodeRoomMessage(f *testing.F) {
	for _, s := range goldenRoomInputs(f) {
		f.Add(s)
	}
	const ms = 1767225600000
	for _, s := range [][]byte{ // the clock's edges
		rawRoomClock(2, "a", 1, ms, MaxRoomClock, "x"), rawRoomClock(2, "a", 1, ms, MaxRoomClock+1, "x"),
		rawRoomClock(2, "a", 1, ms, ms-1, "x"), rawRoomClock(2, "a", 1, ms, 1<<64-1, "x"),
		rawRoomClock(1, "a", 1, ms, 1<<63, "x"), rawRoom(2, "a", 1, ms, "x"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeRoomMessage(data)
		if err != nil {
			checkRoomError(t, err)
			return
		}
		if m.Clock < m.SentAt.UnixMilli() || m.Clock > MaxRoomClock || m.SentAt.UnixMilli() <= 0 {
			t.Fatalf("accepted clock %d with sent_at %d", m.Clock, m.SentAt.UnixMilli())
		}
		enc, err := EncodeRoomMessage(m)
		if err != nil {
			t.Fatalf("Encode refuses what Decode accepted (%+v): %v", m, err)
		}
		if again, err := DecodeRoomMessage(enc); err != nil || again != m {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, m)
		}
	})
}

// FuzzOpenSealed opens arbitrary bytes with the golden private room's key:
// no panic, every error wraps a sentinel, and nothing but a payload sealed
// with that key opens (the fuzzer does not forge Poly1305 tags).
func FuzzOpenSealed(f *testing.F) {
	g := goldenRooms()[3]
	_, topic, key := g.payload(f)
	for _, s := range goldenRoomInputs(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeRoomPayload(data, g.msg.Room, key, topic)
		if err != nil {
			checkRoomError(t, err)
			return
		}
		want, _, _ := g.payload(t)
		if !bytes.Equal(data, want) || m != g.msg {
			t.Fatalf("forged payload %x opens to %+v", data, m)
		}
	})
}

func checkRoomError(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range []error{ErrFrameTooLarge, ErrMalformed, ErrUnsupportedVersion} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v wraps %d sentinels, want 1", err, n)
	}
}
