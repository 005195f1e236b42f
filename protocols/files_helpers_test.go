package protocols

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// tid returns the transfer ID start, start+1, ..., start+15.
func tid(start byte) [16]byte { return [16]byte(counting(start, 16)) }

// testHash returns the hash start, start+1, ..., start+31.
func testHash(start byte) Hash { return Hash(counting(start, 32)) }

// testManifestBytes is a small valid manifest, encoded.
func testManifestBytes(tb testing.TB) []byte {
	return marshal(tb, manifest(dir("d"), fileOf("d/hi.txt", []byte("hi\n"))))
}

func filesErr(c ErrorCode, msg string) FilesFrame {
	return FilesFrame{Error: &RemoteError{Code: c, Message: msg}}
}

// validFilesFrames are frames (all but Chunk, which WriteChunk writes) that
// must survive a round trip unchanged.
func validFilesFrames(tb testing.TB) map[string]FilesFrame {
	mb := testManifestBytes(tb)
	return map[string]FilesFrame{
		"offer":                 {Offer: &FileOffer{TransferID: tid(1), Manifest: mb}},
		"offer one byte":        {Offer: &FileOffer{TransferID: tid(2), Manifest: []byte{0}}},
		"offer ack":             {OfferAck: &FileOfferAck{TransferID: tid(3)}},
		"fetch push":            {Fetch: &FileFetch{TransferID: tid(4), ContentID: ContentID(mb), WantManifest: true}},
		"fetch push resume":     {Fetch: &FileFetch{TransferID: tid(4), ContentID: ContentID(mb)}},
		"fetch ticket":          {Fetch: &FileFetch{ContentID: testHash(5), Secret: counting(0xa0, 32), WantManifest: true}},
		"fetch ticket short":    {Fetch: &FileFetch{ContentID: testHash(6), Secret: counting(0, minSecretLen)}},
		"fetch ticket long":     {Fetch: &FileFetch{ContentID: testHash(7), Secret: counting(0, maxSecretLen)}},
		"serving":               {Serving: &FileServing{Manifest: mb}},
		"serving no manifest":   {Serving: &FileServing{}},
		"request":               {Request: &ChunkRequest{Entry: 1, First: 0, Count: 1}},
		"request zeros":         {Request: &ChunkRequest{Count: MaxRequestChunks}},
		"request largest":       {Request: &ChunkRequest{Entry: 1<<32 - 1, First: 1<<64 - 1, Count: MaxRequestChunks}},
		"complete":              {Complete: &FileComplete{Root: testHash(8)}},
		"complete zero":         {Complete: &FileComplete{}},
		"done":                  {Done: &FileDone{}},
		"reject":                {Reject: &FileReject{TransferID: tid(9)}},
		"error":                 filesErr(CodeUnknownTransfer, ""),
		"error cancelled":       filesErr(CodeCancelled, "cancelled by the sender"),
		"error source changed":  filesErr(CodeSourceChanged, "a/b.txt changed"),
		"error root mismatch":   filesErr(CodeRootMismatch, ""),
		"error longest message": filesErr(CodeInternal, strings.Repeat("é", MaxDMErrorMessage/2)),
		"error unknown code":    filesErr(1<<31-1, "from the future"),
	}
}

// filesFramesEqual compares frames part by part (nil and empty slices are
// the same).
func filesFramesEqual(a, b FilesFrame) bool {
	return reflect.DeepEqual(normalizeFiles(a), normalizeFiles(b))
}

func normalizeFiles(f FilesFrame) FilesFrame {
	if f.Offer != nil && len(f.Offer.Manifest) == 0 {
		f.Offer = &FileOffer{TransferID: f.Offer.TransferID}
	}
	if f.Serving != nil && len(f.Serving.Manifest) == 0 {
		f.Serving = &FileServing{}
	}
	if f.Fetch != nil && len(f.Fetch.Secret) == 0 {
		c := *f.Fetch
		c.Secret = nil
		f.Fetch = &c
	}
	return f
}

// encodeFiles encodes a valid frame or fails the test.
func encodeFiles(tb testing.TB, f FilesFrame) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := NewFilesWriter(&buf).Write(f); err != nil {
		tb.Fatalf("Write(%+v): %v", f, err)
	}
	return buf.Bytes()
}

// encodeChunk encodes a chunk header and its data or fails the test.
func encodeChunk(tb testing.TB, h ChunkHeader, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := NewFilesWriter(&buf).WriteChunk(h, data); err != nil {
		tb.Fatalf("WriteChunk(%+v): %v", h, err)
	}
	return buf.Bytes()
}

// filesFrameOf wraps a part (its field number in Frame) in a delimited Frame.
func filesFrameOf(num protowire.Number, part []byte) []byte {
	return delimited(pbuf(nil).bytes(num, part))
}

// Field numbers of the parts of a kith.files.v1.Frame.
const (
	partOffer protowire.Number = 1 + iota
	partOfferAck
	partFetch
	partServing
	partRequest
	partChunk
	partComplete
	partDone
	partReject
	partError
)

// pbOffer and pbFetch are Offer and Fetch bodies; nil and zero fields are
// left out.
func pbOffer(version uint64, id, manifest []byte) pbuf {
	var b pbuf
	if version != 0 {
		b = b.varint(1, version)
	}
	if id != nil {
		b = b.bytes(2, id)
	}
	if manifest != nil {
		b = b.bytes(3, manifest)
	}
	return b
}

func pbFetch(version uint64, id, contentID, secret []byte) pbuf {
	var b pbuf
	if version != 0 {
		b = b.varint(1, version)
	}
	for i, v := range [][]byte{id, contentID, secret} {
		if v != nil {
			b = b.bytes(protowire.Number(2+i), v)
		}
	}
	return b
}
