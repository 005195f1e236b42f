package protocols

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kithnet/kith/protocols/internal/pb"
)

func TestDMRoundTrip(t *testing.T) {
	for name, in := range validDMFrames() {
		t.Run(name, func(t *testing.T) {
			enc := encodeDM(t, in)
			r := NewDMReader(bytes.NewReader(enc))
			got, err := r.Read()
			if err != nil {
				t.Fatalf("Read(%x): %v", enc, err)
			}
			if !dmFramesEqual(got, in) {
				t.Fatalf("round trip: got %+v, want %+v", got, in)
			}
			if _, err := r.Read(); err != io.EOF {
				t.Fatalf("second Read: err = %v, want io.EOF", err)
			}
			if again := encodeDM(t, got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded to %x, want %x", again, enc)
			}
		})
	}
}

func TestDMMessageSentAt(t *testing.T) {
	local := time.Date(2026, 1, 1, 1, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	enc := encodeDM(t, DMFrame{Message: &DMMessage{SentAt: local}})
	got, err := NewDMReader(bytes.NewReader(enc)).Read()
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC)
	if s := got.Message.SentAt; s != want {
		t.Fatalf("SentAt = %v (%v), want %v in UTC, whole milliseconds", s, s.Location(), want)
	}
}

// TestDMStream reads an exchange's worth of frames, as a receiver or a
// sender would, from readers that return few bytes at a time.
func TestDMStream(t *testing.T) {
	frames := []DMFrame{msgFrame(dmID(1), "one"), msgFrame(dmID(2), ""), ackFrame(dmID(1)),
		errFrame(CodeBlocked, "")}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, encodeDM(t, f)...)
	}
	readers := map[string]func() io.Reader{
		"bytes.Reader":   func() io.Reader { return bytes.NewReader(stream) },
		"one byte":       func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":           func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"EOF with bytes": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, src := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewDMReader(src())
			for i, want := range frames {
				got, err := r.Read()
				if err != nil || !dmFramesEqual(got, want) {
					t.Fatalf("frame %d: Read = %+v, %v; want %+v", i, got, err, want)
				}
			}
			for range 2 {
				if _, err := r.Read(); err != io.EOF {
					t.Fatalf("after the last frame: err = %v, want io.EOF", err)
				}
			}
		})
	}
}

// TestDMReaderReadsNoFurther: Read consumes exactly one frame, also from a
// reader that is not an io.ByteReader.
func TestDMReaderReadsNoFurther(t *testing.T) {
	enc := encodeDM(t, msgFrame(dmID(0), "hi"))
	src := bytes.NewReader(append(bytes.Clone(enc), "rest"...))
	r := NewDMReader(struct{ io.Reader }{src})
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != "rest" {
		t.Fatalf("after one frame the stream holds %q, want %q", rest, "rest")
	}
}

func TestDMReaderErrorsAreFinal(t *testing.T) {
	good := encodeDM(t, ackFrame(dmID(0)))
	in := append([]byte{0x01, 0xff}, good...) // a malformed 1-byte frame, then a good one
	r := NewDMReader(bytes.NewReader(in))
	_, err1 := r.Read()
	_, err2 := r.Read()
	if !errors.Is(err1, ErrMalformed) || err2 != err1 {
		t.Fatalf("Read errors %v, then %v; want ErrMalformed twice", err1, err2)
	}
}

// TestDMReaderStreamErrors: errors of the stream itself are passed on, wrap
// no sentinel, and map to CodeInternal.
func TestDMReaderStreamErrors(t *testing.T) {
	reset := errors.New("stream reset")
	enc := encodeDM(t, msgFrame(dmID(0), "hello"))
	cases := map[string]io.Reader{
		"before a frame":     iotest.ErrReader(reset),
		"inside the prefix":  io.MultiReader(bytes.NewReader([]byte{0x80}), iotest.ErrReader(reset)),
		"inside the body":    io.MultiReader(bytes.NewReader(enc[:5]), iotest.ErrReader(reset)),
		"deadline, one byte": iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(enc))),
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewDMReader(src).Read()
			if !errors.Is(err, reset) && !errors.Is(err, iotest.ErrTimeout) {
				t.Fatalf("err = %v, want the stream's error", err)
			}
			if c := ErrorCodeFor(err); c != CodeInternal {
				t.Fatalf("ErrorCodeFor(%q) = %v, want internal", err, c)
			}
		})
	}
}

func TestDMWriterRefuses(t *testing.T) {
	msg := func(m DMMessage) DMFrame { return DMFrame{Message: &m} }
	cases := []struct {
		name string
		f    DMFrame
		want error
		msg  string
	}{
		{"no part", DMFrame{}, ErrMalformed, "frame has 0 parts"},
		{"two parts", DMFrame{Ack: &DMAck{}, Error: &RemoteError{Code: CodeInternal}}, ErrMalformed, "2 parts"},
		{"three parts", DMFrame{Message: &DMMessage{SentAt: testSentAt}, Ack: &DMAck{},
			Error: &RemoteError{Code: CodeInternal}}, ErrMalformed, "3 parts"},
		{"zero SentAt", msg(DMMessage{Text: "hi"}), ErrMalformed, "sent_at is -62135596800000"},
		{"SentAt at 1970", msg(DMMessage{SentAt: time.Unix(0, 999_999)}), ErrMalformed, "sent_at is 0"},
		{"text too long", msg(DMMessage{SentAt: testSentAt, Text: strings.Repeat("x", MaxDMText+1)}),
			ErrFrameTooLarge, "65537 bytes"},
		{"text not UTF-8", msg(DMMessage{SentAt: testSentAt, Text: "\xff"}), ErrMalformed, "not valid UTF-8"},
		{"code 0", errFrame(0, ""), ErrMalformed, "error code 0"},
		{"negative code", errFrame(-3, ""), ErrMalformed, "error code -3"},
		{"error message too long", errFrame(CodeInternal, strings.Repeat("x", MaxDMErrorMessage+1)),
			ErrFrameTooLarge, "257 bytes"},
		{"error message with newline", errFrame(CodeInternal, "a\nb"), ErrMalformed, "control character"},
		{"error message not UTF-8", errFrame(CodeInternal, "\xff"), ErrMalformed, "not valid UTF-8"},
	}
	var buf bytes.Buffer
	w := NewDMWriter(&buf)
	for _, tc := range cases {
		err := w.Write(tc.f)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %v mentioning %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("refused frames wrote %x", buf.Bytes())
	}
	if err := w.Write(ackFrame(dmID(0))); err != nil || buf.Len() == 0 {
		t.Fatalf("after refusals, Write(ack) = %v with %d bytes written", err, buf.Len())
	}
}

// countingWriter counts Write calls and fails once limit calls have been made.
type countingWriter struct {
	calls, limit int
	buf          bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.calls++; w.calls > w.limit {
		return 0, errors.New("stream reset")
	}
	return w.buf.Write(p)
}

func TestDMWriterStream(t *testing.T) {
	cw := &countingWriter{limit: 2}
	w := NewDMWriter(cw)
	for i, f := range []DMFrame{msgFrame(dmID(0), strings.Repeat("x", MaxDMText)), ackFrame(dmID(0))} {
		if err := w.Write(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if cw.calls != 2 {
		t.Fatalf("2 frames took %d Write calls, want 2", cw.calls)
	}
	err1 := w.Write(ackFrame(dmID(1)))
	err2 := w.Write(ackFrame(dmID(2)))
	if err1 == nil || err2 != err1 || cw.calls != 3 {
		t.Fatalf("after a failed write: errors %v, %v and %d calls; want the same error and 3 calls",
			err1, err2, cw.calls)
	}
	if c := ErrorCodeFor(err1); c != CodeInternal {
		t.Fatalf("ErrorCodeFor(%v) = %v, want internal", err1, c)
	}
}

func TestErrorCodes(t *testing.T) {
	for c := CodeMalformed; c <= CodeUnexpected; c++ {
		name := pb.Error_Code(c).String()
		if name == "" || strings.ToLower(name) != c.String() {
			t.Errorf("code %d: String() = %q, protobuf name %q", c, c.String(), name)
		}
	}
	// Codes 9 and up belong to file transfer, not to DM.
	if got := pb.Error_Code(CodeUnexpected + 1).String(); got != "9" {
		t.Errorf("dm.proto has a code 9 (%s), which DM does not use", got)
	}
	for c, want := range map[ErrorCode]string{0: "code(0)", 13: "code(13)", -1: "code(-1)",
		CodeNotAllowed: "not_allowed", CodeUnknownTransfer: "unknown_transfer", CodeCancelled: "cancelled",
		CodeSourceChanged: "source_changed", CodeRootMismatch: "root_mismatch"} {
		if got := c.String(); got != want {
			t.Errorf("ErrorCode(%d).String() = %q, want %q", int32(c), got, want)
		}
	}
}

func TestRemoteError(t *testing.T) {
	var err error = &RemoteError{Code: CodeNotAllowed, Message: "not a contact"}
	if got, want := err.Error(), "peer refused: not_allowed: not a contact"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&RemoteError{Code: CodeBlocked}).Error(), "peer refused: blocked"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeNotAllowed {
		t.Errorf("errors.As(%v) did not find the RemoteError", err)
	}
}

func TestErrorCodeFor(t *testing.T) {
	cases := map[error]ErrorCode{
		ErrFrameTooLarge:                  CodeTooLarge,
		ErrMalformed:                      CodeMalformed,
		ErrUnsupportedVersion:             CodeUnsupportedVersion,
		errors.New("disk full"):           CodeInternal,
		io.ErrUnexpectedEOF:               CodeInternal,
		&RemoteError{Code: CodeBlocked}:   CodeInternal,
		errors.Join(io.EOF, ErrMalformed): CodeMalformed,
	}
	for err, want := range cases {
		if got := ErrorCodeFor(err); got != want {
			t.Errorf("ErrorCodeFor(%v) = %v, want %v", err, got, want)
		}
	}
	for _, tc := range hostileDMFrames() {
		_, err := NewDMReader(bytes.NewReader(tc.input)).Read()
		want := map[error]ErrorCode{ErrFrameTooLarge: CodeTooLarge,
			ErrUnsupportedVersion: CodeUnsupportedVersion}[tc.want]
		if want == 0 {
			want = CodeMalformed
		}
		if got := ErrorCodeFor(err); got != want {
			t.Errorf("%s: ErrorCodeFor(%v) = %v, want %v", tc.name, err, got, want)
		}
	}
}
