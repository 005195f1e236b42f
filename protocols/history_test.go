package protocols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
)

// frameOf returns body behind its length prefix.
func hframe(body []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(body))), body...) }

// part wraps b as field num of a frame.
func hpart(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}

func hvarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func hbytes(num protowire.Number, b []byte) []byte { return hpart(num, b) }

// rawRequest builds a request body field by field.
func rawRequest(version uint64, topic string, max uint64, haves ...[]byte) []byte {
	b := hvarint(1, version)
	b = append(b, hbytes(2, []byte(topic))...)
	for _, h := range haves {
		b = append(b, hbytes(3, h)...)
	}
	return hframe(hpart(1, append(b, hvarint(4, max)...)))
}

func rawHave(author []byte, through uint64, held ...[2]uint64) []byte {
	b := append(hbytes(1, author), hvarint(2, through)...)
	for _, r := range held {
		b = append(b, hbytes(3, append(hvarint(1, r[0]), hvarint(2, r[1])...))...)
	}
	return b
}

type hostileHistory struct {
	name   string
	input  []byte
	server bool  // read with the server's limit
	want   error // the sentinel
	msg    string
}

func hostileHistoryFrames(tb testing.TB) []hostileHistory {
	const topic = "/kith/room/1/open/lobby"
	p1 := []byte(testPeer(tb, 1))
	var many [][]byte
	for i := range MaxHistoryAuthors + 1 {
		many = append(many, rawHave([]byte(testPeer(tb, byte(i))), uint64(i)))
	}
	// testPeer's seeds repeat after 256; make the authors distinct by the
	// count check, which comes first.
	var heldMany [][]byte // 513 held ranges over 2 authors
	for i := range 2 {
		var held [][2]uint64
		for k := range MaxHistoryHeld/2 + i {
			held = append(held, [2]uint64{uint64(10 + 3*k), uint64(11 + 3*k)})
		}
		heldMany = append(heldMany, rawHave([]byte(testPeer(tb, byte(i))), 1, held...))
	}
	big := bytes.Repeat([]byte{1}, MaxHistoryRawMessage+1)
	return []hostileHistory{
		{"request over 96 KiB", hframe(make([]byte, MaxHistoryRequest+1)), true, ErrFrameTooLarge, "more than the 98304 allowed"},
		{"length 2^63", binary.AppendUvarint(nil, 1<<63), false, ErrFrameTooLarge, "allowed"},
		{"version 2", rawRequest(2, topic, 10), true, ErrUnsupportedVersion, "version 2"},
		{"version 0", rawRequest(0, topic, 10), true, ErrUnsupportedVersion, "version 0"},
		{"version 2 and a bad topic", rawRequest(2, "nope", 0), true, ErrUnsupportedVersion, "version 2"},
		{"not a room topic", rawRequest(1, "/other/topic", 10), true, ErrMalformed, "not a room topic"},
		{"private topic not hex", rawRequest(1, RoomTopicPrefix+strings.Repeat("G", 64), 10), true, ErrMalformed, "not a room topic"},
		{"max 0", rawRequest(1, topic, 0), true, ErrMalformed, "max_messages is 0"},
		{"max 2001", rawRequest(1, topic, 2001), true, ErrFrameTooLarge, "max_messages is 2001"},
		{"1025 authors", rawRequest(1, topic, 10, many...), true, ErrFrameTooLarge, "1025 authors"},
		{"author twice", rawRequest(1, topic, 10, rawHave(p1, 1), rawHave(p1, 2)), true, ErrMalformed, "listed twice"},
		{"author not a peer ID", rawRequest(1, topic, 10, rawHave([]byte("alice"), 1)), true, ErrMalformed, "not a peer ID"},
		{"held from above to", rawRequest(1, topic, 10, rawHave(p1, 1, [2]uint64{5, 4})), true, ErrMalformed, "held range 0 is 5 to 4"},
		{"held next to through", rawRequest(1, topic, 10, rawHave(p1, 4, [2]uint64{5, 9})), true, ErrMalformed, "held range 0 starts at 5"},
		{"held at through", rawRequest(1, topic, 10, rawHave(p1, 4, [2]uint64{4, 9})), true, ErrMalformed, "held range 0 starts at 4"},
		{"held overlapping", rawRequest(1, topic, 10, rawHave(p1, 1, [2]uint64{3, 9}, [2]uint64{9, 12})), true, ErrMalformed, "held range 1 starts at 9"},
		{"held descending", rawRequest(1, topic, 10, rawHave(p1, 1, [2]uint64{20, 29}, [2]uint64{3, 4})), true, ErrMalformed, "held range 1 starts at 3"},
		{"held past 2^64", rawRequest(1, topic, 10, rawHave(p1, 1, [2]uint64{3, math.MaxUint64}, [2]uint64{1, 1})), true, ErrMalformed, "held range 1 starts at 1"},
		{"513 held ranges", rawRequest(1, topic, 10, heldMany...), true, ErrFrameTooLarge, "more than 512 held ranges"},
		{"held as a varint", rawRequest(1, topic, 10, append(rawHave(p1, 1), hvarint(3, 7)...)), true, ErrMalformed, "wrong wire type"},
		{"held from as bytes", rawRequest(1, topic, 10, append(rawHave(p1, 1), hbytes(3, hbytes(1, []byte{5}))...)), true, ErrMalformed, "wrong wire type"},
		{"author too long", rawRequest(1, topic, 10, rawHave(make([]byte, 65), 1)), true, ErrFrameTooLarge, "65 bytes"},
		{"topic as a varint", hframe(hpart(1, append(hvarint(1, 1), hvarint(2, 5)...))), true, ErrMalformed, "wrong wire type"},
		{"empty batch", hframe(hpart(2, nil)), false, ErrMalformed, "no message"},
		{"empty message", hframe(hpart(2, hbytes(1, nil))), false, ErrMalformed, "message 0 is empty"},
		{"message too long", hframe(hpart(2, hbytes(1, big))), false, ErrFrameTooLarge, "message 0 is 24577 bytes"},
		{"empty frame", hframe(nil), false, ErrMalformed, "0 parts"},
		{"two parts", hframe(append(hpart(3, nil), hpart(3, nil)...)), false, ErrMalformed, "2 parts"},
		{"error code 0", hframe(hpart(4, hbytes(2, []byte("x")))), false, ErrMalformed, "error code 0"},
		{"cut off", hframe(hpart(3, hvarint(1, 1)))[:3], false, ErrMalformed, "stream ended"},
	}
}

func TestHostileHistoryFrames(t *testing.T) {
	for _, h := range hostileHistoryFrames(t) {
		t.Run(h.name, func(t *testing.T) {
			limit := MaxHistoryFrame
			if h.server {
				limit = MaxHistoryRequest
			}
			_, err := NewHistoryReader(bytes.NewReader(h.input)).Read(limit)
			if !errors.Is(err, h.want) || !strings.Contains(err.Error(), h.msg) {
				t.Fatalf("Read: %v; want %v mentioning %q", err, h.want, h.msg)
			}
			checkDMReadError(t, err)
		})
	}
}

// The writer refuses what the reader refuses, and writes nothing then.
func TestHistoryWriterRefuses(t *testing.T) {
	p := testPeer(t, 1)
	for _, f := range []HistoryFrame{
		{},
		{End: &HistoryEnd{}, Batch: &HistoryBatch{Messages: [][]byte{{1}}}},
		{Request: &HistoryRequest{Topic: "lobby", Max: 1}},
		{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: MaxHistoryMessages + 1}},
		{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: 1, Have: []HistoryHave{{Author: p, Through: 1}, {Author: p, Through: 2}}}},
		{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: 1,
			Have: []HistoryHave{{Author: p, Through: 1, Held: []HistoryRange{{From: 2, To: 4}}}}}}, // adjacent to through
		{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: 1,
			Have: []HistoryHave{{Author: p, Through: 1, Held: []HistoryRange{{From: 5, To: 4}}}}}},
		{Request: &HistoryRequest{Topic: OpenRoomTopicPrefix + "lobby", Max: 1,
			Have: []HistoryHave{{Author: p, Through: 1, Held: []HistoryRange{{From: 8, To: 9}, {From: 3, To: 4}}}}}},
		{Batch: &HistoryBatch{}},
		{Error: &RemoteError{Code: 0}},
	} {
		var buf bytes.Buffer
		w := NewHistoryWriter(&buf)
		if err := w.Write(f); err == nil || buf.Len() != 0 {
			t.Errorf("Write(%+v) = %v, wrote %d bytes", f, err, buf.Len())
		}
	}
}

// WriteMessages cuts messages into batches of at most MaxHistoryFrame, in
// order, and the reader gets them all back.
func TestHistoryWriteMessagesSplits(t *testing.T) {
	var msgs [][]byte
	for i := range 100 {
		msgs = append(msgs, bytes.Repeat([]byte{byte(i)}, MaxHistoryRawMessage-i))
	}
	var buf bytes.Buffer
	w := NewHistoryWriter(&buf)
	if err := w.WriteMessages(msgs); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(HistoryFrame{End: &HistoryEnd{More: true}}); err != nil {
		t.Fatal(err)
	}
	r := NewHistoryReader(&buf)
	var got [][]byte
	batches := 0
	for {
		f, err := r.Read(MaxHistoryFrame)
		if err != nil {
			t.Fatal(err)
		}
		if f.End != nil {
			if !f.End.More {
				t.Error("more lost")
			}
			break
		}
		batches++
		got = append(got, f.Batch.Messages...)
	}
	if !reflect.DeepEqual(got, msgs) {
		t.Errorf("read %d messages back, not the %d written", len(got), len(msgs))
	}
	if want := 3; batches != want { // 2.4 MB in frames of at most 1 MiB
		t.Errorf("%d batches, want %d", batches, want)
	}
	if _, err := r.Read(MaxHistoryFrame); err != io.EOF {
		t.Errorf("after End: %v", err)
	}
	var empty bytes.Buffer
	if err := NewHistoryWriter(&empty).WriteMessages([][]byte{{1}, nil}); err == nil || empty.Len() != 0 {
		t.Errorf("WriteMessages with an empty message: %v, wrote %d bytes", err, empty.Len())
	}
}

// The largest request the rules allow (every author as long as allowed, every
// through as large as it gets, as many held ranges as allowed, each as long
// as a range gets) is written and read back: no valid request is too large
// to send, to a server that reads held ranges or to one that reads none
// (both read MaxHistoryRequest).
func TestHistoryLargestRequestFits(t *testing.T) {
	req := &HistoryRequest{Topic: OpenRoomTopicPrefix + strings.Repeat("a", MaxRoomNameLen), Max: MaxHistoryMessages}
	for i := range MaxHistoryAuthors {
		// An identity multihash: code 0, length, digest.
		id := append([]byte{0, MaxHistoryAuthorLen - 2}, bytes.Repeat([]byte{byte(i >> 8)}, MaxHistoryAuthorLen-4)...)
		id = binary.BigEndian.AppendUint16(id, uint16(i))
		h := HistoryHave{Author: peer.ID(id), Through: math.MaxUint64}
		if i < MaxHistoryHeld { // as many held ranges as allowed, each as long as a range gets
			h.Through = 1 << 63
			h.Held = []HistoryRange{{From: 1<<63 + 2, To: math.MaxUint64}}
		}
		req.Have = append(req.Have, h)
	}
	var buf bytes.Buffer
	if err := NewHistoryWriter(&buf).Write(HistoryFrame{Request: req}); err != nil {
		t.Fatalf("writing the largest request: %v", err)
	}
	n := buf.Len()
	f, err := NewHistoryReader(&buf).Read(MaxHistoryRequest)
	if err != nil || f.Request == nil || len(f.Request.Have) != MaxHistoryAuthors {
		t.Fatalf("reading it back: %+v, %v", f.Request != nil, err)
	}
	t.Logf("the largest request is %d bytes with its prefix, of the %d allowed", n, MaxHistoryRequest)
}

// Lacks says what a server sends for an author: seqs above through and
// outside every held range.
func TestHistoryHaveLacks(t *testing.T) {
	h := HistoryHave{Through: 3, Held: []HistoryRange{{From: 5, To: 6}, {From: 9, To: 9}, {From: 12, To: math.MaxUint64}}}
	var lacks []uint64
	for seq := uint64(0); seq <= 14; seq++ {
		if h.Lacks(seq) {
			lacks = append(lacks, seq)
		}
	}
	if want := []uint64{4, 7, 8, 10, 11}; !reflect.DeepEqual(lacks, want) {
		t.Errorf("lacks %v, want %v", lacks, want)
	}
	if !(HistoryHave{}).Lacks(1) || (HistoryHave{Through: 1}).Lacks(1) || h.Lacks(math.MaxUint64) {
		t.Error("Lacks without held ranges, or at 2^64-1, is wrong")
	}
}
