package protocols

import (
	"fmt"
	"io"

	"github.com/kithnet/kith/protocols/internal/pb"
)

// DMWriter writes /kith/dm/1.0.0 frames to a stream. It is not safe for
// concurrent use.
type DMWriter struct {
	w   io.Writer
	err error // sticky: after a failed write the stream is out of step
}

// NewDMWriter returns a writer of frames to w, typically a network.Stream.
func NewDMWriter(w io.Writer) *DMWriter {
	return &DMWriter{w: w}
}

// Write checks f by the same rules DMReader.Read applies and writes it, length
// prefix and body, with a single Write call on the underlying writer. A frame
// that breaks a rule (not exactly one part, text longer than MaxDMText or not
// UTF-8, SentAt not after 1970, an invalid error code or message) is not
// written: the error wraps ErrMalformed or ErrFrameTooLarge and the writer
// stays usable. An error of the underlying writer is final: later calls
// return it again. Message frames are written with version DMVersion.
func (w *DMWriter) Write(f DMFrame) error {
	if w.err != nil {
		return w.err
	}
	buf, err := encodeDMFrame(f)
	if err != nil {
		return err
	}
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("protocols: writing a frame: %w", err)
		return w.err
	}
	return nil
}

// encodeDMFrame checks f and returns it as length prefix and protobuf body.
func encodeDMFrame(f DMFrame) ([]byte, error) {
	pf, err := f.toPB()
	if err != nil {
		return nil, err
	}
	return marshalFrame(pf, MaxDMFrame) // never too large with the limits checked above
}

// toPB checks f and converts it to its protobuf form.
func (f DMFrame) toPB() (*pb.Frame, error) {
	if err := f.checkParts(); err != nil {
		return nil, err
	}
	switch {
	case f.Message != nil:
		m, err := f.Message.toPB()
		return &pb.Frame{Part: &pb.Frame_Message{Message: m}}, err
	case f.Ack != nil:
		return &pb.Frame{Part: &pb.Frame_Ack{Ack: &pb.Ack{Id: f.Ack.ID[:]}}}, nil
	default:
		e, err := f.Error.toPB()
		return &pb.Frame{Part: &pb.Frame_Error{Error: e}}, err
	}
}

func (m *DMMessage) toPB() (*pb.Message, error) {
	ms := m.SentAt.UnixMilli()
	if err := checkSentAt(ms); err != nil {
		return nil, err
	}
	if err := checkText(m.Text); err != nil {
		return nil, err
	}
	return &pb.Message{Version: DMVersion, Id: m.ID[:], SentAt: ms, Text: m.Text}, nil
}

func (e *RemoteError) toPB() (*pb.Error, error) {
	if err := checkCode(e.Code); err != nil {
		return nil, err
	}
	if err := checkErrorMessage(e.Message); err != nil {
		return nil, err
	}
	return &pb.Error{Code: pb.Error_Code(e.Code), Message: e.Message}, nil
}
