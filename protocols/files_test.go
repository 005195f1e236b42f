package protocols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

func TestFilesRoundTrip(t *testing.T) {
	for name, in := range validFilesFrames(t) {
		t.Run(name, func(t *testing.T) {
			enc := encodeFiles(t, in)
			r := NewFilesReader(bytes.NewReader(enc))
			got, err := r.Read(MaxFilesFrame)
			if err != nil {
				t.Fatalf("Read(%x): %v", enc, err)
			}
			if !filesFramesEqual(got, in) {
				t.Fatalf("round trip: got %+v, want %+v", got, in)
			}
			if _, err := r.Read(MaxFilesFrame); err != io.EOF {
				t.Fatalf("second Read: err = %v, want io.EOF", err)
			}
			if again := encodeFiles(t, got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded to %x, want %x", again, enc)
			}
			if in.Offer == nil && in.Serving == nil && len(enc) > MaxFilesControlFrame {
				t.Fatalf("a control frame of %d bytes", len(enc))
			}
		})
	}
}

// TestFilesLargestFrames checks the frame limits against the largest frames
// the rules allow: an Offer of MaxManifestBytes fits MaxFilesFrame, and the
// largest control frame (an Error) MaxFilesControlFrame.
func TestFilesLargestFrames(t *testing.T) {
	offer := encodeFiles(t, FilesFrame{Offer: &FileOffer{TransferID: tid(1), Manifest: make([]byte, MaxManifestBytes)}})
	serving := encodeFiles(t, FilesFrame{Serving: &FileServing{Manifest: make([]byte, MaxManifestBytes)}})
	control := []FilesFrame{
		filesErr(1<<31-1, strings.Repeat("x", MaxDMErrorMessage)),
		{Fetch: &FileFetch{ContentID: testHash(1), Secret: make([]byte, maxSecretLen), WantManifest: true}},
		{Request: &ChunkRequest{Entry: 1<<32 - 1, First: 1<<64 - 1, Count: MaxRequestChunks}},
	}
	longest := 0
	for _, f := range control {
		longest = max(longest, len(encodeFiles(t, f))-2) // a 2-byte length prefix
	}
	t.Logf("offer %d, serving %d, longest control frame %d bytes after the prefix", len(offer), len(serving), longest)
	if longest != 268 || longest > MaxFilesControlFrame {
		t.Errorf("the longest control frame is %d bytes; the documentation says 268", longest)
	}
	for _, enc := range [][]byte{offer, serving} {
		f, err := NewFilesReader(bytes.NewReader(enc)).Read(MaxFilesFrame)
		if err != nil || (f.Offer == nil && f.Serving == nil) {
			t.Fatalf("Read of a %d-byte frame: %+v, %v", len(enc), f, err)
		}
	}
}

func TestFilesChunkRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), ChunkSize/16)
	headers := []ChunkHeader{{0, 0, 1}, {3, 7, 100}, {0, 0, ChunkSize}, {1<<32 - 1, 1<<64 - 1, 5}}
	var stream []byte
	for _, h := range headers {
		stream = append(stream, encodeChunk(t, h, data[:h.Size])...)
	}
	stream = append(stream, encodeFiles(t, FilesFrame{Done: &FileDone{}})...)
	r := NewFilesReader(iotest.HalfReader(bytes.NewReader(stream)))
	for _, h := range headers {
		f, err := r.Read(MaxFilesControlFrame)
		if err != nil || f.Chunk == nil || *f.Chunk != h {
			t.Fatalf("Read = %+v, %v; want chunk %+v", f, err, h)
		}
		got := make([]byte, h.Size)
		first := min(7, len(got)) // in two calls
		if err := r.ReadChunkData(got[:first]); err != nil {
			t.Fatal(err)
		}
		if err := r.ReadChunkData(got[first:]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[:h.Size]) {
			t.Fatalf("chunk %+v: data differs", h)
		}
	}
	if f, err := r.Read(MaxFilesControlFrame); err != nil || f.Done == nil {
		t.Fatalf("after the chunks: %+v, %v; want done", f, err)
	}
}

// TestChunkHeaderEncoding: WriteChunk's hand-made header is the bytes
// deterministic protobuf gives the frame.
func TestChunkHeaderEncoding(t *testing.T) {
	for _, h := range []ChunkHeader{{0, 0, 1}, {1, 0, 1}, {0, 1, 1}, {127, 128, ChunkSize},
		{1<<32 - 1, 1<<64 - 1, ChunkSize}, {300, 1 << 40, 65535}} {
		pf := &filespb.Frame{Part: &filespb.Frame_Chunk{Chunk: &filespb.Chunk{Entry: h.Entry, Index: h.Index, Size: h.Size}}}
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(pf)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := appendChunkHeader(nil, h), delimited(body); !bytes.Equal(got, want) {
			t.Errorf("header %+v: %x, protobuf gives %x", h, got, want)
		}
	}
}

// recordingWriter keeps the slices it is given, without copying them.
type recordingWriter struct{ writes [][]byte }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, p)
	return len(p), nil
}

// TestWriteChunkNoCopy: WriteChunk passes the caller's data on in one Write,
// not a copy, after one Write of the header.
func TestWriteChunkNoCopy(t *testing.T) {
	data := make([]byte, ChunkSize)
	rw := &recordingWriter{}
	w := NewFilesWriter(rw)
	for range 3 {
		if err := w.WriteChunk(ChunkHeader{Entry: 1, Index: 2, Size: ChunkSize}, data); err != nil {
			t.Fatal(err)
		}
	}
	if len(rw.writes) != 6 {
		t.Fatalf("3 chunks took %d Write calls, want 6", len(rw.writes))
	}
	for i := 1; i < 6; i += 2 {
		if got := rw.writes[i]; len(got) != len(data) || &got[0] != &data[0] {
			t.Fatalf("Write %d was given a copy of the data, not the data", i)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.WriteChunk(ChunkHeader{Entry: 1, Index: 2, Size: ChunkSize}, data)
	})
	if allocs > 0 {
		t.Errorf("WriteChunk allocates %.0f times per chunk, want 0", allocs)
	}
}

// TestReadChunkDataNoCopy: ReadChunkData reads straight into the caller's
// buffer.
func TestReadChunkDataNoCopy(t *testing.T) {
	enc := encodeChunk(t, ChunkHeader{Size: 10}, []byte("0123456789"))
	buf := make([]byte, 10)
	var got [][]byte
	src := readerFunc(func(p []byte) (int, error) {
		got = append(got, p)
		return bytes.NewReader(enc[len(enc)-10:]).Read(p)
	})
	r := NewFilesReader(bytes.NewReader(enc[:len(enc)-10]))
	if _, err := r.Read(MaxFilesControlFrame); err != nil {
		t.Fatal(err)
	}
	r.r = src // the data comes from here
	if err := r.ReadChunkData(buf); err != nil || string(buf) != "0123456789" {
		t.Fatalf("ReadChunkData: %q, %v", buf, err)
	}
	if len(got) != 1 || &got[0][0] != &buf[0] {
		t.Fatal("ReadChunkData read into another buffer")
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestReadChunkDataMisuse(t *testing.T) {
	stream := append(encodeChunk(t, ChunkHeader{Size: 4}, []byte("abcd")), encodeFiles(t, FilesFrame{Done: &FileDone{}})...)
	r := NewFilesReader(bytes.NewReader(stream))
	if err := r.ReadChunkData(make([]byte, 1)); err == nil {
		t.Fatal("ReadChunkData before any chunk frame succeeded")
	}
	if err := r.ReadChunkData(nil); err != nil {
		t.Fatalf("ReadChunkData(nil) with nothing pending: %v", err)
	}
	if _, err := r.Read(MaxFilesControlFrame); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(MaxFilesControlFrame); err == nil || ErrorCodeFor(err) != CodeInternal {
		t.Fatalf("Read before the chunk's data: err = %v, want a misuse error", err)
	}
	if err := r.ReadChunkData(make([]byte, 5)); err == nil {
		t.Fatal("ReadChunkData of 5 bytes of a 4-byte chunk succeeded")
	}
	// Neither misuse changed anything: the data and the next frame still read.
	buf := make([]byte, 4)
	if err := r.ReadChunkData(buf); err != nil || string(buf) != "abcd" {
		t.Fatalf("ReadChunkData = %q, %v", buf, err)
	}
	if f, err := r.Read(MaxFilesControlFrame); err != nil || f.Done == nil {
		t.Fatalf("Read = %+v, %v; want done", f, err)
	}
}

func TestReadChunkDataTruncated(t *testing.T) {
	enc := encodeChunk(t, ChunkHeader{Size: 10}, []byte("0123456789"))
	r := NewFilesReader(bytes.NewReader(enc[:len(enc)-3]))
	if _, err := r.Read(MaxFilesControlFrame); err != nil {
		t.Fatal(err)
	}
	err := r.ReadChunkData(make([]byte, 10))
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) ||
		!strings.Contains(err.Error(), "stream ended inside the chunk data (10 bytes left)") {
		t.Fatalf("err = %v, want ErrMalformed and io.ErrUnexpectedEOF", err)
	}
	if err2 := r.ReadChunkData(make([]byte, 1)); err2 != err {
		t.Fatalf("after the error: %v, want it again", err2)
	}
	if _, err2 := r.Read(MaxFilesControlFrame); err2 != err {
		t.Fatalf("Read after the error: %v, want it again", err2)
	}
}

func TestFilesReaderLimit(t *testing.T) {
	offer := encodeFiles(t, validFilesFrames(t)["offer"])
	length, prefix := binary.Uvarint(offer)
	n := int(length)
	if n+prefix != len(offer) {
		t.Fatalf("offer of %d bytes has a prefix of %d bytes saying %d", len(offer), prefix, n)
	}
	for _, tc := range []struct {
		limit int
		ok    bool
	}{{MaxFilesFrame, true}, {1 << 62, true}, {n, true}, {n - 1, false}, {MaxFilesControlFrame, n <= MaxFilesControlFrame},
		{0, false}, {-1, false}} {
		_, err := NewFilesReader(bytes.NewReader(offer)).Read(tc.limit)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrFrameTooLarge)) {
			t.Errorf("Read(%d) of a %d-byte frame: err = %v", tc.limit, n, err)
		}
	}
}

// TestFilesErrorCodes: files.proto names every code ErrorCode knows, and no
// other.
func TestFilesErrorCodes(t *testing.T) {
	for c := CodeMalformed; c <= CodeRootMismatch; c++ {
		name := filespb.Error_Code(c).String()
		if strings.ToLower(name) != c.String() {
			t.Errorf("code %d: String() = %q, files.proto name %q", c, c.String(), name)
		}
	}
	if got := filespb.Error_Code(CodeRootMismatch + 1).String(); got != "13" {
		t.Errorf("files.proto has a code 13 (%s) that ErrorCode lacks", got)
	}
}
