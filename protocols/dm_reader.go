package protocols

import (
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

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
	return &DMReader{r: r, br: byteReaderOf(r)}
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
	n, err := readLength(r.br, MaxDMFrame)
	if err != nil {
		return DMFrame{}, err
	}
	body, err := readBody(r.r, n)
	if err != nil {
		return DMFrame{}, readError(fmt.Sprintf("frame of %d bytes", n), err)
	}
	return decodeDMFrame(body)
}

// decodeDMFrame decodes and checks the protobuf Frame in body.
func decodeDMFrame(body []byte) (DMFrame, error) {
	var pf pb.Frame
	if err := proto.Unmarshal(body, &pf); err != nil {
		return DMFrame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkOnePart(body, 3, "message, ack, error"); err != nil {
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
	// Unreachable: checkOnePart found exactly one part.
	return DMFrame{}, fmt.Errorf("%w: frame has no part", ErrMalformed)
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
