package protocols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// testSentAt is a fixed, whole-millisecond time: 2026-01-01T00:00:00Z.
var testSentAt = time.UnixMilli(1767225600000).UTC()

// dmID returns the ID start, start+1, ..., start+15.
func dmID(start byte) [16]byte { return [16]byte(counting(start, 16)) }

func msgFrame(id [16]byte, text string) DMFrame {
	return DMFrame{Message: &DMMessage{ID: id, SentAt: testSentAt, Text: text}}
}

func ackFrame(id [16]byte) DMFrame { return DMFrame{Ack: &DMAck{ID: id}} }

func errFrame(c ErrorCode, msg string) DMFrame {
	return DMFrame{Error: &RemoteError{Code: c, Message: msg}}
}

// validDMFrames are frames that must survive a round trip unchanged.
func validDMFrames() map[string]DMFrame {
	longest := strings.Repeat("x", MaxDMText-3) + "€" // a 3-byte rune ends at the limit
	return map[string]DMFrame{
		"message":              msgFrame(dmID(0), "hi"),
		"message empty text":   msgFrame(dmID(1), ""),
		"message unicode":      msgFrame(dmID(2), "grüße 👋 — 你好\nsecond line\ttab"),
		"message longest text": msgFrame(dmID(3), longest),
		"message earliest": {Message: &DMMessage{ID: dmID(4),
			SentAt: time.UnixMilli(1).UTC(), Text: "1970"}},
		"message far future": {Message: &DMMessage{ID: dmID(5),
			SentAt: time.UnixMilli(1<<63 - 1).UTC(), Text: "later"}},
		"ack":                   ackFrame(dmID(6)),
		"ack zero id":           ackFrame([16]byte{}),
		"error":                 errFrame(CodeNotAllowed, "not a contact"),
		"error empty message":   errFrame(CodeInternal, ""),
		"error longest message": errFrame(CodeRateLimited, strings.Repeat("é", MaxDMErrorMessage/2)),
		"error unknown code":    errFrame(42, "from the future"),
		"error each code 1":     errFrame(CodeMalformed, "m"),
		"error each code 8":     errFrame(CodeUnexpected, "u"),
	}
}

// dmFramesEqual compares frames part by part (times with time.Equal).
func dmFramesEqual(a, b DMFrame) bool {
	switch {
	case (a.Message == nil) != (b.Message == nil) || (a.Ack == nil) != (b.Ack == nil) ||
		(a.Error == nil) != (b.Error == nil):
		return false
	case a.Message != nil && (a.Message.ID != b.Message.ID || a.Message.Text != b.Message.Text ||
		!a.Message.SentAt.Equal(b.Message.SentAt)):
		return false
	case a.Ack != nil && *a.Ack != *b.Ack:
		return false
	case a.Error != nil && *a.Error != *b.Error:
		return false
	}
	return true
}

// encodeDM encodes a valid frame or fails the test.
func encodeDM(tb testing.TB, f DMFrame) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := NewDMWriter(&buf).Write(f); err != nil {
		tb.Fatalf("Write(%+v): %v", f, err)
	}
	return buf.Bytes()
}

// pbuf builds raw protobuf, valid or not, field by field.
type pbuf []byte

func (b pbuf) varint(num protowire.Number, v uint64) pbuf {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (b pbuf) bytes(num protowire.Number, v []byte) pbuf {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (b pbuf) fixed32(num protowire.Number, v uint32) pbuf {
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

// delimited prefixes body with its length.
func delimited(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// pbMessage is a Message body with the given fields; an id of nil, a
// version or sentAt of 0 and an empty text are left out.
func pbMessage(version uint64, id []byte, sentAt int64, text string) pbuf {
	var b pbuf
	if version != 0 {
		b = b.varint(1, version)
	}
	if id != nil {
		b = b.bytes(2, id)
	}
	if sentAt != 0 {
		b = b.varint(3, uint64(sentAt))
	}
	if text != "" {
		b = b.bytes(4, []byte(text))
	}
	return b
}

// goodMessage is a valid Message body.
func goodMessage() pbuf { return pbMessage(1, counting(0, 16), testSentAt.UnixMilli(), "hi") }

// frameOf wraps a part (1 message, 2 ack, 3 error) in a delimited Frame.
func frameOf(num protowire.Number, part []byte) []byte {
	return delimited(pbuf(nil).bytes(num, part))
}

// checkDMReadError fails unless err is io.EOF itself or wraps exactly one
// of the three sentinels.
func checkDMReadError(t *testing.T, err error) {
	t.Helper()
	if err == io.EOF {
		return
	}
	n := 0
	for _, s := range []error{ErrFrameTooLarge, ErrMalformed, ErrUnsupportedVersion} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d of the sentinel errors, want 1", err, n)
	}
}

// checkHostileReadError checks the error a reader returned for a hostile
// frame: it wraps want (and ErrMalformed when the frame was cut off), has
// the sentinel ErrorCodeFor maps, and mentions msg.
func checkHostileReadError(t *testing.T, err, want error, msg string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	if errors.Is(want, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %q does not wrap ErrMalformed", err)
	}
	checkDMReadError(t, err)
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
}
