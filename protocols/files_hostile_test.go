package protocols

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

type hostileFiles struct {
	name  string
	input []byte
	limit int    // the limit passed to Read; 0 means MaxFilesFrame
	want  error  // the sentinel the error must wrap
	msg   string // substring of the error message
}

// hostileFilesFrames lists attacks and mistakes FilesReader.Read must reject.
func hostileFilesFrames() []hostileFiles {
	return slices.Concat(hostileFilesLengths(), hostileFilesFraming(), hostileOffersAndFetches(), hostileFilesParts())
}

// hostileFilesLengths attacks the length prefix.
func hostileFilesLengths() []hostileFiles {
	done := filesFrameOf(partDone, nil)
	return []hostileFiles{
		{"length 2^63", binary.AppendUvarint(nil, 1<<63), 0, ErrFrameTooLarge, "9223372036854775808 bytes"},
		{"length 2^32", append(binary.AppendUvarint(nil, 1<<32), done...), 0, ErrFrameTooLarge, "4294967296 bytes"},
		{"length max+1", append(binary.AppendUvarint(nil, MaxFilesFrame+1), 0x42, 0x00), 0, ErrFrameTooLarge,
			"16778241 bytes, more than the 16778240 allowed"},
		{"control length max+1", append(binary.AppendUvarint(nil, MaxFilesControlFrame+1), 0x42, 0x00),
			MaxFilesControlFrame, ErrFrameTooLarge, "1025 bytes, more than the 1024 allowed"},
		{"offer where control expected", filesFrameOf(partOffer, pbOffer(1, counting(1, 16), make([]byte, 2000))),
			MaxFilesControlFrame, ErrFrameTooLarge, "more than the 1024 allowed"},
		{"length 2^64-1", binary.AppendUvarint(nil, 1<<64-1), 0, ErrFrameTooLarge, "18446744073709551615"},
		{"11-byte varint", append(repeat(0xff, 10), 0x01), 0, ErrMalformed, "overflows 64 bits"},
		{"non-minimal varint", []byte{0x82, 0x00, 0x42, 0x00}, 0, ErrMalformed, "not a minimal varint"},
		{"truncated prefix", []byte{0x80}, 0, io.ErrUnexpectedEOF, "inside the length prefix"},
		{"prefix without body", []byte{0x05}, 0, io.ErrUnexpectedEOF, "inside the frame of 5 bytes"},
	}
}

// hostileFilesFraming attacks the Frame message.
func hostileFilesFraming() []hostileFiles {
	ack := pbuf(nil).bytes(1, counting(1, 16))
	return []hostileFiles{
		{"empty frame", delimited(nil), 0, ErrMalformed, "frame has 0 parts; it must have exactly one of offer, offer_ack"},
		{"unknown part only", filesFrameOf(11, ack), 0, ErrMalformed, "frame has 0 parts"},
		{"two parts", delimited(pbuf(nil).bytes(2, ack).bytes(8, nil)), 0, ErrMalformed, "frame has 2 parts"},
		{"one part twice", delimited(pbuf(nil).bytes(8, nil).bytes(8, nil)), 0, ErrMalformed, "frame has 2 parts"},
		{"part of wrong wire type", delimited(pbuf(nil).varint(8, 0)), 0, ErrMalformed, "frame field 8 has wire type 0"},
		{"part as fixed32", delimited(pbuf(nil).fixed32(10, 5)), 0, ErrMalformed, "frame field 10 has wire type 5"},
		{"garbage", delimited([]byte{0xff, 0xff, 0xff}), 0, ErrMalformed, ""},
		{"part length past the end", delimited([]byte{0x42, 0x7f}), 0, ErrMalformed, ""},
		{"end group without start", delimited([]byte{0x0c}), 0, ErrMalformed, ""},
	}
}

// hostileOffersAndFetches attacks the frames that carry a version.
func hostileOffersAndFetches() []hostileFiles {
	id, cid, secret := counting(1, 16), counting(0, 32), counting(0xa0, 32)
	offer := func(b pbuf) []byte { return filesFrameOf(partOffer, b) }
	fetch := func(b pbuf) []byte { return filesFrameOf(partFetch, b) }
	return []hostileFiles{
		{"offer version 0", offer(pbOffer(0, id, []byte{1})), 0, ErrUnsupportedVersion, "offer version 0"},
		{"offer version 2", offer(pbOffer(2, id, []byte{1})), 0, ErrUnsupportedVersion,
			"offer version 2; this side speaks only version 1"},
		{"offer version 2^32-1", offer(pbOffer(1<<32-1, id, []byte{1})), 0, ErrUnsupportedVersion, "version 4294967295"},
		{"offer version 2 breaking other rules", offer(pbOffer(2, id[:3], nil).varint(3, 1)), 0,
			ErrUnsupportedVersion, "offer version 2"},
		{"offer version as bytes", offer(pbOffer(0, id, []byte{1}).bytes(1, []byte{1})), 0, ErrUnsupportedVersion, "version 0"},
		{"empty offer", offer(nil), 0, ErrUnsupportedVersion, "offer version 0"},
		{"offer id of 15 bytes", offer(pbOffer(1, id[:15], []byte{1})), 0, ErrMalformed, "offer transfer id is 15 bytes"},
		{"offer zero id", offer(pbOffer(1, make([]byte, 16), []byte{1})), 0, ErrMalformed, "offer transfer id is all zero"},
		{"offer without manifest", offer(pbOffer(1, id, nil)), 0, ErrMalformed, "offer has no manifest"},
		{"offer manifest too large", offer(pbOffer(1, id, make([]byte, MaxManifestBytes+1))), 0, ErrFrameTooLarge,
			"offer manifest is 16777217 bytes, more than the 16777216 allowed"},
		{"offer manifest as varint", offer(pbOffer(1, id, nil).varint(3, 1)), 0, ErrMalformed,
			"Offer field manifest has the wrong wire type 0"},
		{"fetch version 2", fetch(pbFetch(2, nil, cid, secret)), 0, ErrUnsupportedVersion, "fetch version 2"},
		{"empty fetch", fetch(nil), 0, ErrUnsupportedVersion, "fetch version 0"},
		{"fetch without id", fetch(pbFetch(1, nil, cid, secret)), 0, ErrMalformed, "fetch transfer id is 0 bytes"},
		{"fetch id of 17 bytes", fetch(pbFetch(1, append(id, 0), cid, nil)), 0, ErrMalformed, "fetch transfer id is 17 bytes"},
		{"fetch content ID of 31 bytes", fetch(pbFetch(1, id, cid[:31], nil)), 0, ErrMalformed,
			"fetch content ID is 31 bytes; it must be exactly 32"},
		{"fetch id and secret", fetch(pbFetch(1, id, cid, secret)), 0, ErrMalformed, "fetch has a transfer ID and a secret"},
		{"fetch neither id nor secret", fetch(pbFetch(1, make([]byte, 16), cid, nil)), 0, ErrMalformed,
			"fetch without a transfer ID has a secret of 0 bytes"},
		{"fetch secret of 15 bytes", fetch(pbFetch(1, make([]byte, 16), cid, secret[:15])), 0, ErrMalformed, "secret of 15 bytes"},
		{"fetch secret of 65 bytes", fetch(pbFetch(1, make([]byte, 16), cid, make([]byte, 65))), 0, ErrMalformed,
			"secret of 65 bytes; it must have 16 to 64"},
		{"fetch want_manifest as bytes", fetch(pbFetch(1, id, cid, nil).bytes(5, []byte{1})), 0, ErrMalformed,
			"Fetch field want_manifest has the wrong wire type 2"},
	}
}

// hostileFilesParts attacks the frames without a version.
func hostileFilesParts() []hostileFiles {
	perr := func(code uint64, msg string) []byte {
		return filesFrameOf(partError, pbuf(nil).varint(1, code).bytes(2, []byte(msg)))
	}
	return []hostileFiles{
		{"ack id of 15 bytes", filesFrameOf(partOfferAck, pbuf(nil).bytes(1, counting(1, 15))), 0, ErrMalformed,
			"offer_ack transfer id is 15 bytes"},
		{"ack zero id", filesFrameOf(partOfferAck, pbuf(nil).bytes(1, make([]byte, 16))), 0, ErrMalformed, "all zero"},
		{"empty ack", filesFrameOf(partOfferAck, nil), 0, ErrMalformed, "offer_ack transfer id is 0 bytes"},
		{"reject zero id", filesFrameOf(partReject, pbuf(nil).bytes(1, make([]byte, 16))), 0, ErrMalformed,
			"reject transfer id is all zero"},
		{"serving manifest too large", filesFrameOf(partServing, pbuf(nil).bytes(1, make([]byte, MaxManifestBytes+1))),
			0, ErrFrameTooLarge, "serving manifest is 16777217 bytes"},
		{"serving manifest as varint", filesFrameOf(partServing, pbuf(nil).varint(1, 1)), 0, ErrMalformed,
			"Serving field manifest has the wrong wire type 0"},
		{"request for 0 chunks", filesFrameOf(partRequest, pbuf(nil).varint(1, 1)), 0, ErrMalformed, "request for 0 chunks"},
		{"request for 65 chunks", filesFrameOf(partRequest, pbuf(nil).varint(3, 65)), 0, ErrFrameTooLarge,
			"request for 65 chunks, more than the 64 allowed"},
		{"request for 2^32-1 chunks", filesFrameOf(partRequest, pbuf(nil).varint(3, 1<<32-1)), 0, ErrFrameTooLarge,
			"request for 4294967295 chunks"},
		{"request count as bytes", filesFrameOf(partRequest, pbuf(nil).bytes(3, []byte{1})), 0, ErrMalformed,
			"Request field count has the wrong wire type 2"},
		{"request first as fixed32", filesFrameOf(partRequest, pbuf(nil).varint(3, 1).fixed32(2, 1)), 0, ErrMalformed,
			"Request field first has the wrong wire type 5"},
		{"chunk of 0 bytes", filesFrameOf(partChunk, pbuf(nil).varint(1, 1)), 0, ErrMalformed, "chunk of 0 bytes"},
		{"chunk of ChunkSize+1", filesFrameOf(partChunk, pbuf(nil).varint(3, ChunkSize+1)), 0, ErrFrameTooLarge,
			"chunk of 1048577 bytes, more than the 1048576 allowed"},
		{"chunk of 2^32-1", filesFrameOf(partChunk, pbuf(nil).varint(3, 1<<32-1)), 0, ErrFrameTooLarge, "4294967295 bytes"},
		{"chunk size as bytes", filesFrameOf(partChunk, pbuf(nil).bytes(3, []byte{1})), 0, ErrMalformed,
			"Chunk field size has the wrong wire type 2"},
		{"complete without root", filesFrameOf(partComplete, nil), 0, ErrMalformed, "complete root is 0 bytes"},
		{"complete root of 31 bytes", filesFrameOf(partComplete, pbuf(nil).bytes(1, counting(0, 31))), 0, ErrMalformed,
			"complete root is 31 bytes; it must be exactly 32"},
		{"error code 0", perr(0, "x"), 0, ErrMalformed, "error code 0 is not a valid code"},
		{"error code negative", perr(1<<64-1, "x"), 0, ErrMalformed, "error code -1"},
		{"error message too long", perr(9, strings.Repeat("x", MaxDMErrorMessage+1)), 0, ErrFrameTooLarge,
			"error message is 257 bytes"},
		{"error message with escape", perr(9, "\x1b]0;x\x07"), 0, ErrMalformed, "control character U+001B"},
		{"error code as bytes", filesFrameOf(partError, pbuf(nil).bytes(1, []byte{4})), 0, ErrMalformed,
			"Error field code has the wrong wire type"},
	}
}

func TestHostileFilesFrames(t *testing.T) {
	for _, tc := range hostileFilesFrames() {
		t.Run(tc.name, func(t *testing.T) {
			limit := cmp.Or(tc.limit, MaxFilesFrame)
			f, err := NewFilesReader(bytes.NewReader(tc.input)).Read(limit)
			if err == nil {
				t.Fatalf("Read accepted %x as %+v", tc.input[:min(len(tc.input), 64)], f)
			}
			checkHostileReadError(t, err, tc.want, tc.msg)
			if f != (FilesFrame{}) {
				t.Fatalf("Read returned %+v with its error", f)
			}
		})
	}
}

// TestFilesUnknownFieldsAccepted: unknown fields are ignored everywhere, as
// is an error code this version does not know.
func TestFilesUnknownFieldsAccepted(t *testing.T) {
	unknown := pbuf(nil).varint(15, 1).bytes(100, []byte("future")).fixed32(17, 9)
	id := counting(1, 16)
	cases := map[string]struct {
		input []byte
		want  FilesFrame
	}{
		"in frame":        {delimited(append(pbuf(nil).bytes(8, nil), unknown...)), FilesFrame{Done: &FileDone{}}},
		"in done":         {filesFrameOf(partDone, unknown), FilesFrame{Done: &FileDone{}}},
		"field 1 in done": {filesFrameOf(partDone, pbuf(nil).bytes(1, nil)), FilesFrame{Done: &FileDone{}}},
		"in offer": {filesFrameOf(partOffer, append(pbOffer(1, id, []byte("m")), unknown...)),
			FilesFrame{Offer: &FileOffer{TransferID: tid(1), Manifest: []byte("m")}}},
		"in fetch": {filesFrameOf(partFetch, append(pbFetch(1, id, counting(0, 32), nil), unknown...)),
			FilesFrame{Fetch: &FileFetch{TransferID: tid(1), ContentID: testHash(0)}}},
		"in request": {filesFrameOf(partRequest, append(pbuf(nil).varint(3, 1), unknown...)),
			FilesFrame{Request: &ChunkRequest{Count: 1}}},
		"unknown code": {filesFrameOf(partError, pbuf(nil).varint(1, 99)), filesErr(99, "")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := NewFilesReader(bytes.NewReader(tc.input)).Read(MaxFilesFrame)
			if err != nil {
				t.Fatalf("Read(%x): %v", tc.input, err)
			}
			if !filesFramesEqual(got, tc.want) {
				t.Fatalf("Read = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestFilesLengthPrefixAllocations checks that an oversized length prefix is
// refused before anything near its size is allocated.
func TestFilesLengthPrefixAllocations(t *testing.T) {
	for _, tc := range []struct {
		n     uint64
		limit int
	}{{1 << 63, MaxFilesFrame}, {1 << 32, MaxFilesFrame}, {MaxFilesFrame + 1, MaxFilesFrame},
		{MaxFilesControlFrame + 1, MaxFilesControlFrame}, {1 << 20, MaxFilesControlFrame}} {
		in := append(binary.AppendUvarint(nil, tc.n), make([]byte, min(tc.n, 1<<20))...)
		read := func() {
			if _, err := NewFilesReader(bytes.NewReader(in)).Read(tc.limit); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("length %d: err = %v, want ErrFrameTooLarge", tc.n, err)
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
		if allocs > 10 || perRun > 2048 {
			t.Errorf("length %d, limit %d: %.0f allocations and %d bytes per read; want at most 10 and 2 KiB",
				tc.n, tc.limit, allocs, perRun)
		}
	}
}
