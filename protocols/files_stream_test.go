package protocols

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestFilesStream reads a fetch exchange's worth of frames and chunk data,
// as a receiver would, from readers that return few bytes at a time.
func TestFilesStream(t *testing.T) {
	mb := testManifestBytes(t)
	var stream []byte
	add := func(f FilesFrame) { stream = append(stream, encodeFiles(t, f)...) }
	add(FilesFrame{Serving: &FileServing{Manifest: mb}})
	stream = append(stream, encodeChunk(t, ChunkHeader{Entry: 1, Index: 0, Size: 3}, []byte("hi\n"))...)
	add(FilesFrame{Done: &FileDone{}})
	add(filesErr(CodeCancelled, "bye"))
	readers := map[string]func() io.Reader{
		"bytes.Reader":   func() io.Reader { return bytes.NewReader(stream) },
		"one byte":       func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":           func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"EOF with bytes": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, src := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewFilesReader(src())
			f, err := r.Read(MaxFilesFrame)
			if err != nil || f.Serving == nil || !bytes.Equal(f.Serving.Manifest, mb) {
				t.Fatalf("Read = %+v, %v; want serving", f, err)
			}
			if f, err = r.Read(MaxFilesControlFrame); err != nil || f.Chunk == nil {
				t.Fatalf("Read = %+v, %v; want a chunk", f, err)
			}
			data := make([]byte, f.Chunk.Size)
			if err := r.ReadChunkData(data); err != nil || string(data) != "hi\n" {
				t.Fatalf("ReadChunkData = %q, %v", data, err)
			}
			if f, err = r.Read(MaxFilesControlFrame); err != nil || f.Done == nil {
				t.Fatalf("Read = %+v, %v; want done", f, err)
			}
			if f, err = r.Read(MaxFilesControlFrame); err != nil || f.Error == nil || f.Error.Code != CodeCancelled {
				t.Fatalf("Read = %+v, %v; want error", f, err)
			}
			for range 2 {
				if _, err := r.Read(MaxFilesControlFrame); err != io.EOF {
					t.Fatalf("after the last frame: err = %v, want io.EOF", err)
				}
			}
		})
	}
}

// TestFilesReaderReadsNoFurther: Read and ReadChunkData consume exactly
// their bytes, also from a reader that is not an io.ByteReader.
func TestFilesReaderReadsNoFurther(t *testing.T) {
	enc := append(encodeFiles(t, FilesFrame{Done: &FileDone{}}), encodeChunk(t, ChunkHeader{Size: 2}, []byte("ab"))...)
	src := bytes.NewReader(append(bytes.Clone(enc), "rest"...))
	r := NewFilesReader(struct{ io.Reader }{src})
	if _, err := r.Read(MaxFilesControlFrame); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(MaxFilesControlFrame); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadChunkData(make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != "rest" {
		t.Fatalf("after the frames the stream holds %q, want %q", rest, "rest")
	}
}

func TestFilesReaderErrorsAreFinal(t *testing.T) {
	good := encodeFiles(t, FilesFrame{Done: &FileDone{}})
	in := append([]byte{0x01, 0xff}, good...)
	r := NewFilesReader(bytes.NewReader(in))
	_, err1 := r.Read(MaxFilesFrame)
	_, err2 := r.Read(MaxFilesFrame)
	if !errors.Is(err1, ErrMalformed) || err2 != err1 {
		t.Fatalf("Read errors %v, then %v; want ErrMalformed twice", err1, err2)
	}
}

func TestFilesReaderStreamErrors(t *testing.T) {
	reset := errors.New("stream reset")
	enc := encodeChunk(t, ChunkHeader{Size: 5}, []byte("hello"))
	cases := map[string]io.Reader{
		"before a frame":     iotest.ErrReader(reset),
		"inside the prefix":  io.MultiReader(bytes.NewReader([]byte{0x80}), iotest.ErrReader(reset)),
		"inside the body":    io.MultiReader(bytes.NewReader(enc[:3]), iotest.ErrReader(reset)),
		"inside the data":    io.MultiReader(bytes.NewReader(enc[:len(enc)-2]), iotest.ErrReader(reset)),
		"deadline, one byte": iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(enc))),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewFilesReader(src)
			_, err := r.Read(MaxFilesControlFrame)
			if err == nil {
				err = r.ReadChunkData(make([]byte, 5))
			}
			if !errors.Is(err, reset) && !errors.Is(err, iotest.ErrTimeout) {
				t.Fatalf("err = %v, want the stream's error", err)
			}
			if c := ErrorCodeFor(err); c != CodeInternal {
				t.Fatalf("ErrorCodeFor(%q) = %v, want internal", err, c)
			}
		})
	}
}

func TestFilesWriterRefuses(t *testing.T) {
	cases := []struct {
		name string
		f    FilesFrame
		want error
		msg  string
	}{
		{"no part", FilesFrame{}, ErrMalformed, "frame has 0 parts"},
		{"two parts", FilesFrame{Done: &FileDone{}, Reject: &FileReject{TransferID: tid(1)}}, ErrMalformed, "2 parts"},
		{"chunk", FilesFrame{Chunk: &ChunkHeader{Size: 1}}, errUseWriteChunk, "WriteChunk"},
		{"offer zero id", FilesFrame{Offer: &FileOffer{Manifest: []byte{1}}}, ErrMalformed, "offer transfer id is all zero"},
		{"offer no manifest", FilesFrame{Offer: &FileOffer{TransferID: tid(1)}}, ErrMalformed, "offer has no manifest"},
		{"offer manifest too large", FilesFrame{Offer: &FileOffer{TransferID: tid(1), Manifest: make([]byte, MaxManifestBytes+1)}},
			ErrFrameTooLarge, "offer manifest is 16777217 bytes, more than the 16777216 allowed"},
		{"serving manifest too large", FilesFrame{Serving: &FileServing{Manifest: make([]byte, MaxManifestBytes+1)}},
			ErrFrameTooLarge, "serving manifest is 16777217 bytes"},
		{"ack zero id", FilesFrame{OfferAck: &FileOfferAck{}}, ErrMalformed, "offer_ack transfer id is all zero"},
		{"reject zero id", FilesFrame{Reject: &FileReject{}}, ErrMalformed, "reject transfer id is all zero"},
		{"fetch id and secret", FilesFrame{Fetch: &FileFetch{TransferID: tid(1), Secret: make([]byte, 32)}},
			ErrMalformed, "fetch has a transfer ID and a secret of 32 bytes"},
		{"fetch neither", FilesFrame{Fetch: &FileFetch{}}, ErrMalformed, "fetch without a transfer ID has a secret of 0 bytes; it must have 16 to 64"},
		{"fetch short secret", FilesFrame{Fetch: &FileFetch{Secret: make([]byte, 15)}}, ErrMalformed, "secret of 15 bytes"},
		{"fetch long secret", FilesFrame{Fetch: &FileFetch{Secret: make([]byte, 65)}}, ErrMalformed, "secret of 65 bytes"},
		{"request 0", FilesFrame{Request: &ChunkRequest{}}, ErrMalformed, "request for 0 chunks"},
		{"request 65", FilesFrame{Request: &ChunkRequest{Count: 65}}, ErrFrameTooLarge, "request for 65 chunks, more than the 64 allowed"},
		{"error code 0", filesErr(0, ""), ErrMalformed, "error code 0"},
		{"error message too long", filesErr(CodeInternal, strings.Repeat("x", MaxDMErrorMessage+1)), ErrFrameTooLarge, "257 bytes"},
		{"error message with escape", filesErr(CodeInternal, "\x1b[2J"), ErrMalformed, "control character U+001B"},
	}
	var buf bytes.Buffer
	w := NewFilesWriter(&buf)
	for _, tc := range cases {
		if err := w.Write(tc.f); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.want, tc.msg)
		}
	}
	chunks := []struct {
		h    ChunkHeader
		data []byte
		want error
		msg  string
	}{
		{ChunkHeader{Size: 0}, nil, ErrMalformed, "chunk of 0 bytes"},
		{ChunkHeader{Size: ChunkSize + 1}, make([]byte, ChunkSize+1), ErrFrameTooLarge, "chunk of 1048577 bytes, more than the 1048576 allowed"},
		{ChunkHeader{Size: 3}, []byte("ab"), ErrMalformed, "chunk header says 3 bytes, but the data is 2"},
		{ChunkHeader{Size: 1}, []byte("ab"), ErrMalformed, "chunk header says 1 bytes, but the data is 2"},
	}
	for _, tc := range chunks {
		if err := w.WriteChunk(tc.h, tc.data); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("WriteChunk(%+v, %d bytes): err = %v, want %v mentioning %q", tc.h, len(tc.data), err, tc.want, tc.msg)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("refused frames wrote %d bytes", buf.Len())
	}
	if err := w.Write(FilesFrame{Done: &FileDone{}}); err != nil || buf.Len() == 0 {
		t.Fatalf("after refusals, Write(done) = %v with %d bytes written", err, buf.Len())
	}
}

func TestFilesWriterStream(t *testing.T) {
	cw := &countingWriter{limit: 4}
	w := NewFilesWriter(cw)
	if err := w.Write(FilesFrame{Serving: &FileServing{Manifest: make([]byte, MaxManifestBytes)}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(FilesFrame{Done: &FileDone{}}); err != nil {
		t.Fatal(err)
	}
	if cw.calls != 2 {
		t.Fatalf("2 frames took %d Write calls, want 2", cw.calls)
	}
	if err := w.WriteChunk(ChunkHeader{Size: 2}, []byte("ab")); err != nil || cw.calls != 4 {
		t.Fatalf("WriteChunk = %v after %d calls, want 4", err, cw.calls)
	}
	err1 := w.WriteChunk(ChunkHeader{Size: 2}, []byte("ab"))
	err2 := w.Write(FilesFrame{Done: &FileDone{}})
	if err1 == nil || err2 != err1 || cw.calls != 5 {
		t.Fatalf("after a failed write: errors %v, %v and %d calls; want the same error and 5 calls",
			err1, err2, cw.calls)
	}
}

func TestChunkChecks(t *testing.T) {
	m := manifest(dir("d"), file("d/big", 2*ChunkSize+5), file("empty", 0), file("one", ChunkSize))
	for _, tc := range []struct {
		r   ChunkRequest
		msg string // "" when valid
	}{
		{ChunkRequest{Entry: 1, First: 0, Count: 3}, ""},
		{ChunkRequest{Entry: 1, First: 2, Count: 1}, ""},
		{ChunkRequest{Entry: 3, First: 0, Count: 1}, ""},
		{ChunkRequest{Entry: 1, First: 1, Count: 3}, "request for 3 chunks from chunk 1 of entry 1, which has 3 chunks"},
		{ChunkRequest{Entry: 1, First: 3, Count: 1}, "from chunk 3 of entry 1"},
		{ChunkRequest{Entry: 1, First: 1<<64 - 1, Count: 2}, "from chunk 18446744073709551615"},
		{ChunkRequest{Entry: 1, First: 0, Count: 0}, "request for 0 chunks"},
		{ChunkRequest{Entry: 0, First: 0, Count: 1}, "request for entry 0, which is a directory"},
		{ChunkRequest{Entry: 2, First: 0, Count: 1}, "which has 0 chunks"},
		{ChunkRequest{Entry: 4, First: 0, Count: 1}, "request for entry 4 of a manifest of 4 entries"},
		{ChunkRequest{Entry: 1<<32 - 1, Count: 1}, "entry 4294967295"},
	} {
		err := m.CheckRequest(tc.r)
		if (tc.msg == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.msg) ||
			ErrorCodeFor(err) != CodeMalformed)) {
			t.Errorf("CheckRequest(%+v) = %v, want %q", tc.r, err, tc.msg)
		}
	}
	for _, tc := range []struct {
		h   ChunkHeader
		msg string
	}{
		{ChunkHeader{Entry: 1, Index: 0, Size: ChunkSize}, ""},
		{ChunkHeader{Entry: 1, Index: 2, Size: 5}, ""},
		{ChunkHeader{Entry: 3, Index: 0, Size: ChunkSize}, ""},
		{ChunkHeader{Entry: 1, Index: 2, Size: 6}, "chunk 2 of entry 1 is 6 bytes; it must be 5"},
		{ChunkHeader{Entry: 1, Index: 1, Size: 5}, "it must be 1048576"},
		{ChunkHeader{Entry: 1, Index: 3, Size: 5}, "chunk 3 of entry 1, which has 3 chunks"},
		{ChunkHeader{Entry: 0, Index: 0, Size: 1}, "which is a directory"},
		{ChunkHeader{Entry: 2, Index: 0, Size: 1}, "which has 0 chunks"},
		{ChunkHeader{Entry: 9, Index: 0, Size: 1}, "of a manifest of 4 entries"},
	} {
		err := m.CheckChunk(tc.h)
		if (tc.msg == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.msg) ||
			ErrorCodeFor(err) != CodeMalformed)) {
			t.Errorf("CheckChunk(%+v) = %v, want %q", tc.h, err, tc.msg)
		}
	}
	e := m.Entries[1]
	for index, want := range map[int64]int{-1: 0, 0: ChunkSize, 1: ChunkSize, 2: 5, 3: 0, 1 << 62: 0} {
		if got := e.ChunkLen(index); got != want {
			t.Errorf("ChunkLen(%d) = %d, want %d", index, got, want)
		}
	}
}
