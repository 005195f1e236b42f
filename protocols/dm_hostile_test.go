package protocols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

type hostileDM struct {
	name  string
	input []byte
	want  error  // the sentinel the error must wrap
	msg   string // substring of the error message
}

// hostileDMFrames lists attacks and mistakes that DMReader.Read must reject
// (RELIABILITY.md B3, B4, B5).
func hostileDMFrames() []hostileDM {
	return slices.Concat(hostileDMLengths(), hostileDMFraming(), hostileDMMessages(), hostileDMAnswers())
}

// hostileDMLengths attacks the length prefix (B3, B4).
func hostileDMLengths() []hostileDM {
	good := delimited(pbuf(nil).bytes(1, goodMessage()))
	return []hostileDM{
		{"length 2^63", binary.AppendUvarint(nil, 1<<63), ErrFrameTooLarge, "9223372036854775808 bytes"},
		{"length 2^32", append(binary.AppendUvarint(nil, 1<<32), good...), ErrFrameTooLarge, "4294967296 bytes"},
		{"length max+1", append(binary.AppendUvarint(nil, MaxDMFrame+1), make([]byte, MaxDMFrame+1)...),
			ErrFrameTooLarge, "66561 bytes, more than the 66560 allowed"},
		{"length 2^64-1", binary.AppendUvarint(nil, 1<<64-1), ErrFrameTooLarge, "18446744073709551615"},
		{"11-byte varint", append(repeat(0xff, 10), 0x01), ErrMalformed, "overflows 64 bits"},
		{"11-byte varint of zeros", append(repeat(0x80, 10), 0x00), ErrMalformed, "longer than 10 bytes"},
		{"10-byte varint overflowing", append(repeat(0xff, 9), 0x02), ErrMalformed, "overflows 64 bits"},
		{"non-minimal varint", append([]byte{0x82, 0x00}, 0x00, 0x00), ErrMalformed, "not a minimal varint"},
		{"truncated prefix", []byte{0x80}, io.ErrUnexpectedEOF, "inside the length prefix"},
		{"truncated long prefix", []byte{0xff, 0xff}, io.ErrUnexpectedEOF, "inside the length prefix"},
		{"prefix without body", []byte{0x05}, io.ErrUnexpectedEOF, "inside the frame of 5 bytes"},
		{"truncated body", good[:len(good)-3], io.ErrUnexpectedEOF, "inside the frame of 33 bytes"},
	}
}

// hostileDMFraming attacks the Frame message and protobuf encoding (B4).
func hostileDMFraming() []hostileDM {
	ack := pbuf(nil).bytes(1, counting(0, 16))
	return []hostileDM{
		{"empty frame", delimited(nil), ErrMalformed, "frame has 0 parts"},
		{"unknown part only", frameOf(4, goodMessage()), ErrMalformed, "frame has 0 parts"},
		{"two parts", delimited(pbuf(nil).bytes(1, goodMessage()).bytes(2, ack)), ErrMalformed, "frame has 2 parts"},
		{"one part twice", delimited(pbuf(nil).bytes(2, ack).bytes(2, ack)), ErrMalformed, "frame has 2 parts"},
		{"part of wrong wire type", delimited(pbuf(nil).varint(1, 5)), ErrMalformed, "frame field 1 has wire type 0"},
		{"part as fixed32", delimited(pbuf(nil).fixed32(3, 5)), ErrMalformed, "frame field 3 has wire type 5"},
		{"garbage", delimited([]byte{0xff, 0xff, 0xff}), ErrMalformed, ""},
		{"field number 0", delimited([]byte{0x00, 0x01}), ErrMalformed, ""},
		{"part length past the end", delimited([]byte{0x0a, 0x7f, 0x08, 0x01}), ErrMalformed, ""},
		{"part length overflowing", delimited(append([]byte{0x0a}, append(repeat(0xff, 9), 0x01)...)),
			ErrMalformed, ""},
		{"truncated varint inside", delimited(pbuf(nil).bytes(1, []byte{0x08, 0x80})), ErrMalformed, ""},
		{"end group without start", delimited([]byte{0x0c}), ErrMalformed, ""},
	}
}

// hostileDMMessages attacks the fields of a Message (B4, B5).
func hostileDMMessages() []hostileDM {
	id, ms := counting(0, 16), testSentAt.UnixMilli()
	msg := func(b pbuf) []byte { return frameOf(1, b) }
	badUTF8 := string([]byte{'h', 0xff, 'i'})
	return []hostileDM{
		{"id of 15 bytes", msg(pbMessage(1, id[:15], ms, "hi")), ErrMalformed, "message id is 15 bytes"},
		{"id of 17 bytes", msg(pbMessage(1, append(id, 0), ms, "hi")), ErrMalformed, "message id is 17 bytes"},
		{"no id", msg(pbMessage(1, nil, ms, "hi")), ErrMalformed, "message id is 0 bytes"},
		{"id as varint", msg(pbMessage(1, nil, ms, "hi").varint(2, 7)), ErrMalformed, "field id has the wrong wire type 0"},
		{"text as varint", msg(pbMessage(1, id, ms, "").varint(4, 7)), ErrMalformed, "field text has the wrong wire type"},
		{"sent_at 0", msg(pbMessage(1, id, 0, "hi")), ErrMalformed, "sent_at is 0"},
		{"sent_at negative", msg(pbMessage(1, id, -1, "hi")), ErrMalformed, "sent_at is -1"},
		{"sent_at as bytes", msg(pbMessage(1, id, 0, "hi").bytes(3, []byte{1})), ErrMalformed, "field sent_at has the wrong wire type 2"},
		{"invalid UTF-8", msg(pbMessage(1, id, ms, badUTF8)), ErrMalformed, "invalid UTF-8"},
		{"text of MaxDMText+1", msg(pbMessage(1, id, ms, strings.Repeat("x", MaxDMText+1))),
			ErrFrameTooLarge, "text is 65537 bytes, more than the 65536 allowed"},
		{"empty message", msg(nil), ErrUnsupportedVersion, "message version 0"},
		{"version 0", msg(pbMessage(0, id, ms, "hi")), ErrUnsupportedVersion, "message version 0"},
		{"version 2", msg(pbMessage(2, id, ms, "hi")), ErrUnsupportedVersion, "message version 2; this side speaks only version 1"},
		{"version 2^32-1", msg(pbMessage(1<<32-1, id, ms, "hi")), ErrUnsupportedVersion, "message version 4294967295"},
		{"version 2 with other rules", msg(pbMessage(2, id[:3], 0, "hi").varint(4, 1)),
			ErrUnsupportedVersion, "message version 2"},
		{"version as bytes", msg(pbMessage(0, id, ms, "hi").bytes(1, []byte{1})), ErrUnsupportedVersion, "message version 0"},
		{"version 1 then 2", msg(pbMessage(1, id, ms, "hi").varint(1, 2)), ErrUnsupportedVersion, "message version 2"},
	}
}

// hostileDMAnswers attacks Ack and Error frames.
func hostileDMAnswers() []hostileDM {
	ack := func(id []byte) []byte { return frameOf(2, pbuf(nil).bytes(1, id)) }
	perr := func(code uint64, msg string) []byte {
		return frameOf(3, pbuf(nil).varint(1, code).bytes(2, []byte(msg)))
	}
	return []hostileDM{
		{"ack id of 15 bytes", ack(counting(0, 15)), ErrMalformed, "ack id is 15 bytes"},
		{"ack id of 17 bytes", ack(counting(0, 17)), ErrMalformed, "ack id is 17 bytes"},
		{"empty ack", frameOf(2, nil), ErrMalformed, "ack id is 0 bytes"},
		{"ack id as varint", frameOf(2, pbuf(nil).varint(1, 1)), ErrMalformed, "Ack field id has the wrong wire type"},
		{"error code 0", perr(0, "x"), ErrMalformed, "error code 0 is not a valid code"},
		{"error code negative", perr(uint64(1<<64-1), "x"), ErrMalformed, "error code -1"},
		{"error code as bytes", frameOf(3, pbuf(nil).bytes(1, []byte{4})), ErrMalformed, "Error field code has the wrong wire type"},
		{"error message too long", perr(4, strings.Repeat("x", MaxDMErrorMessage+1)),
			ErrFrameTooLarge, "error message is 257 bytes, more than the 256 allowed"},
		{"error message with newline", perr(4, "a\nb"), ErrMalformed, "control character U+000A at byte 1"},
		{"error message with escape", perr(4, "\x1b[2J"), ErrMalformed, "control character U+001B"},
		{"error message with C1 control", perr(4, "a\u009bb"), ErrMalformed, "control character U+009B"},
		{"error message invalid UTF-8", perr(4, "\xc3("), ErrMalformed, "invalid UTF-8"},
	}
}

func TestHostileDMFrames(t *testing.T) {
	for _, tc := range hostileDMFrames() {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewDMReader(bytes.NewReader(tc.input)).Read()
			if err == nil {
				t.Fatalf("Read accepted %x as %+v", tc.input, f)
			}
			checkHostileReadError(t, err, tc.want, tc.msg)
			if f != (DMFrame{}) {
				t.Fatalf("Read returned %+v with its error", f)
			}
		})
	}
}

// TestDMUnknownFieldsAccepted: unknown fields are ignored everywhere, for
// forward compatibility; so is an error code this version does not know.
func TestDMUnknownFieldsAccepted(t *testing.T) {
	unknown := pbuf(nil).varint(15, 1).bytes(100, []byte("future")).fixed32(7, 9)
	id := counting(0, 16)
	cases := map[string]struct {
		input []byte
		want  DMFrame
	}{
		"in frame": {delimited(append(pbuf(nil).bytes(1, goodMessage()), unknown...)),
			msgFrame(dmID(0), "hi")},
		"in frame, first": {delimited(append(bytes.Clone(unknown), pbuf(nil).bytes(2, pbuf(nil).bytes(1, id))...)),
			ackFrame(dmID(0))},
		"in message": {frameOf(1, append(goodMessage(), unknown...)), msgFrame(dmID(0), "hi")},
		"in ack":     {frameOf(2, append(pbuf(nil).bytes(1, id), unknown...)), ackFrame(dmID(0))},
		"in error": {frameOf(3, append(pbuf(nil).varint(1, 6).bytes(2, []byte("slow down")), unknown...)),
			errFrame(CodeRateLimited, "slow down")},
		"unknown code": {frameOf(3, pbuf(nil).varint(1, 99)), errFrame(99, "")},
		"text twice":   {frameOf(1, goodMessage().bytes(4, []byte("last wins"))), msgFrame(dmID(0), "last wins")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := NewDMReader(bytes.NewReader(tc.input)).Read()
			if err != nil {
				t.Fatalf("Read(%x): %v", tc.input, err)
			}
			if !dmFramesEqual(got, tc.want) {
				t.Fatalf("Read = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDMLengthPrefixAllocations checks that an oversized length prefix is
// refused before anything near its size is allocated (RELIABILITY.md B3).
func TestDMLengthPrefixAllocations(t *testing.T) {
	for _, n := range []uint64{1 << 63, 1 << 32, MaxDMFrame + 1} {
		// The claimed bytes follow (up to 1 MiB of them), as a hostile peer
		// would send them.
		in := append(binary.AppendUvarint(nil, n), make([]byte, min(n, 1<<20))...)
		read := func() {
			if _, err := NewDMReader(bytes.NewReader(in)).Read(); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("length %d: err = %v, want ErrFrameTooLarge", n, err)
			}
		}
		const runs = 100
		allocs := testing.AllocsPerRun(runs, read)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			read()
		}
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / runs
		t.Logf("length %d: %.0f allocations, %d bytes per read", n, allocs, perRun)
		if allocs > 10 || perRun > 2048 {
			t.Errorf("length %d: %.0f allocations and %d bytes per read; want at most 10 and 2 KiB",
				n, allocs, perRun)
		}
	}
}
