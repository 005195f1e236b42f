package protocols

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kithnet/kith/protocols/internal/pb"
)

// DMReader reads /kith/dm/1.0.0 frames from a stream. It reads exactly the
// bytes of each frame and nothing beyond it (it does not buffer ahead). It is
// not safe for concurrent use.
//
// It is written here rather than taken from go-msgio/pbio, which also checks
// the length before allocating, because pbio reports a stream that ends right
// after a length prefix as a clean io.EOF, reads ahead into a bufio.Reader,
// and answers an oversized length with a bare io.ErrShortBuffer.
type DMReader struct {
	r   io.Reader
	br  io.ByteReader // r itself when it is one; reads the length prefix
	err error         // sticky: the stream is out of step after an error
}

// NewDMReader returns a reader of frames from r, typically a network.Stream.
func NewDMReader(r io.Reader) *DMReader {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &oneByteReader{r: r}
	}
	return &DMReader{r: r, br: br}
}

// Read reads and checks one frame. It returns io.EOF itself when the stream
// ends cleanly between frames. Every other error is final (later calls return
// it again). Errors about the frame wrap ErrFrameTooLarge, ErrMalformed or
// ErrUnsupportedVersion (see ErrorCodeFor); a stream that ends inside a frame
// is ErrMalformed and also matches io.ErrUnexpectedEOF. Errors of the
// underlying reader (a reset, a deadline) are wrapped without a sentinel.
//
// The length prefix is checked against MaxDMFrame before anything is
// allocated for the frame.
func (r *DMReader) Read() (DMFrame, error) {
	if r.err != nil {
		return DMFrame{}, r.err
	}
	f, err := r.read()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *DMReader) read() (DMFrame, error) {
	n, err := r.readLength()
	if err != nil {
		return DMFrame{}, err
	}
	body := make([]byte, n) // n <= MaxDMFrame
	if _, err := io.ReadFull(r.r, body); err != nil {
		return DMFrame{}, readError(fmt.Sprintf("frame of %d bytes", n), err)
	}
	return decodeDMFrame(body)
}

// readLength reads the frame's length prefix: a minimal unsigned varint of at
// most 10 bytes whose value is at most MaxDMFrame.
func (r *DMReader) readLength() (int, error) {
	var x uint64
	for i := 0; ; i++ { // i < 10: the tenth byte ends the varint or is an error
		b, err := r.br.ReadByte()
		switch {
		case err == io.EOF && i == 0:
			return 0, io.EOF
		case err != nil:
			return 0, readError("length prefix", err)
		case i == 9 && b > 1:
			return 0, fmt.Errorf("%w: length prefix is longer than 10 bytes or overflows 64 bits", ErrMalformed)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b >= 0x80 {
			continue
		}
		if i > 0 && b == 0 {
			return 0, fmt.Errorf("%w: length prefix is not a minimal varint", ErrMalformed)
		}
		if x > MaxDMFrame {
			return 0, fmt.Errorf("%w: length prefix says %d bytes, more than the %d allowed",
				ErrFrameTooLarge, x, MaxDMFrame)
		}
		return int(x), nil
	}
}

// readError reports a failed read of what: the end of the stream inside a
// frame is malformed; other errors come from the stream.
func readError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside the %s: %w", ErrMalformed, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("protocols: reading the %s: %w", what, err)
}

// decodeDMFrame decodes and checks the protobuf Frame in body.
func decodeDMFrame(body []byte) (DMFrame, error) {
	var pf pb.Frame
	if err := proto.Unmarshal(body, &pf); err != nil {
		return DMFrame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkFrameFields(body); err != nil {
		return DMFrame{}, err
	}
	switch p := pf.Part.(type) {
	case *pb.Frame_Message:
		m, err := decodeMessage(p.Message)
		return DMFrame{Message: m}, err
	case *pb.Frame_Ack:
		a, err := decodeAck(p.Ack)
		return DMFrame{Ack: a}, err
	case *pb.Frame_Error:
		e, err := decodeError(p.Error)
		return DMFrame{Error: e}, err
	}
	// Unreachable: checkFrameFields found exactly one part.
	return DMFrame{}, fmt.Errorf("%w: frame has no part", ErrMalformed)
}

// checkFrameFields walks the top-level fields of a Frame that proto.Unmarshal
// accepted: exactly one of fields 1 to 3 (the parts), length-delimited.
// Protobuf would otherwise keep the last of several parts, merge repeated
// ones, and keep a part of the wrong wire type as an unknown field.
func checkFrameFields(b []byte) error {
	parts := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if num < 1 || num > 3 {
			continue // unknown field: ignored
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: frame field %d has wire type %d, want %d (length-delimited)",
				ErrMalformed, num, typ, protowire.BytesType)
		}
		parts++
	}
	if parts != 1 {
		return fmt.Errorf("%w: frame has %d parts; it must have exactly one of message, ack, error",
			ErrMalformed, parts)
	}
	return nil
}

// checkWireTypes rejects a known field of m that was sent with the wrong wire
// type: protobuf keeps such a field as an unknown one, which would make it
// read as absent.
func checkWireTypes(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for b := m.GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if fd := fields.ByNumber(num); fd != nil {
			return fmt.Errorf("%w: %s field %s has the wrong wire type %d",
				ErrMalformed, m.Descriptor().Name(), fd.Name(), typ)
		}
	}
	return nil
}

// decodeMessage checks a Message, its version first, so that a message of
// another version is reported as such whatever else it contains.
func decodeMessage(pm *pb.Message) (*DMMessage, error) {
	if v := pm.GetVersion(); v != DMVersion {
		return nil, fmt.Errorf("%w: message version %d; this side speaks only version %d",
			ErrUnsupportedVersion, v, DMVersion)
	}
	if err := checkWireTypes(pm.ProtoReflect()); err != nil {
		return nil, err
	}
	id, err := decodeID("message", pm.GetId())
	if err != nil {
		return nil, err
	}
	if err := checkSentAt(pm.GetSentAt()); err != nil {
		return nil, err
	}
	if err := checkText(pm.GetText()); err != nil {
		return nil, err
	}
	return &DMMessage{ID: id, SentAt: time.UnixMilli(pm.GetSentAt()).UTC(), Text: pm.GetText()}, nil
}

func decodeAck(pa *pb.Ack) (*DMAck, error) {
	if err := checkWireTypes(pa.ProtoReflect()); err != nil {
		return nil, err
	}
	id, err := decodeID("ack", pa.GetId())
	if err != nil {
		return nil, err
	}
	return &DMAck{ID: id}, nil
}

func decodeError(pe *pb.Error) (*RemoteError, error) {
	if err := checkWireTypes(pe.ProtoReflect()); err != nil {
		return nil, err
	}
	code := ErrorCode(pe.GetCode())
	if err := checkCode(code); err != nil {
		return nil, err
	}
	if err := checkErrorMessage(pe.GetMessage()); err != nil {
		return nil, err
	}
	return &RemoteError{Code: code, Message: pe.GetMessage()}, nil
}

func decodeID(what string, b []byte) ([16]byte, error) {
	if len(b) != dmIDLen {
		return [16]byte{}, fmt.Errorf("%w: %s id is %d bytes; it must be exactly %d",
			ErrMalformed, what, len(b), dmIDLen)
	}
	return [16]byte(b), nil
}

// oneByteReader reads one byte at a time from a reader that is not an
// io.ByteReader, so that DMReader never consumes bytes past a frame.
type oneByteReader struct {
	r io.Reader
	b [1]byte
}

func (o *oneByteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(o.r, o.b[:]); err != nil {
		return 0, err
	}
	return o.b[0], nil
}
