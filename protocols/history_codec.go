package protocols

import (
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kithnet/kith/protocols/internal/pb/roompb"
)

// HistoryReader reads /kith/history/1.0.0 frames from a stream. Like
// DMReader it reads exactly the bytes of each frame and nothing beyond it.
// It is not safe for concurrent use.
type HistoryReader struct {
	r   io.Reader
	br  io.ByteReader
	err error // sticky: the stream is out of step after an error
}

// NewHistoryReader returns a reader of frames from r, typically a
// network.Stream.
func NewHistoryReader(r io.Reader) *HistoryReader {
	return &HistoryReader{r: r, br: byteReaderOf(r)}
}

// Read reads and checks one frame of at most limit bytes after its length
// prefix: MaxHistoryRequest for a server reading the request, MaxHistoryFrame
// for a requester reading the answer (a larger limit counts as
// MaxHistoryFrame). A larger length is ErrFrameTooLarge, before anything is
// allocated for the frame.
//
// It returns io.EOF itself when the stream ends cleanly between frames.
// Every other error is final (later calls return it again). Errors about
// the frame wrap ErrFrameTooLarge, ErrMalformed or ErrUnsupportedVersion
// (see ErrorCodeFor); a stream that ends inside a frame is ErrMalformed and
// also matches io.ErrUnexpectedEOF. Errors of the underlying reader (a
// reset, a deadline) are wrapped without a sentinel.
func (r *HistoryReader) Read(limit int) (HistoryFrame, error) {
	if r.err != nil {
		return HistoryFrame{}, r.err
	}
	f, err := r.read(max(0, min(limit, MaxHistoryFrame)))
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *HistoryReader) read(limit int) (HistoryFrame, error) {
	n, err := readLength(r.br, limit)
	if err != nil {
		return HistoryFrame{}, err
	}
	body, err := readBody(r.r, n)
	if err != nil {
		return HistoryFrame{}, readError(fmt.Sprintf("frame of %d bytes", n), err)
	}
	return decodeHistoryFrame(body)
}

// decodeHistoryFrame decodes and checks the protobuf frame in body: its one
// part, a request's version before anything else in it, the wire types of
// its fields, then its fields.
func decodeHistoryFrame(body []byte) (HistoryFrame, error) {
	var pf roompb.HistoryFrame
	if err := proto.Unmarshal(body, &pf); err != nil {
		return HistoryFrame{}, fmt.Errorf("%w: %s", ErrMalformed, protoError(err))
	}
	if err := checkOnePart(body, 4, historyParts); err != nil {
		return HistoryFrame{}, err
	}
	switch p := pf.Part.(type) {
	case *roompb.HistoryFrame_Request:
		req, err := decodeHistoryRequest(p.Request)
		return wrapHistory(HistoryFrame{Request: req}, err)
	case *roompb.HistoryFrame_Batch:
		if err := checkWireTypes(p.Batch.ProtoReflect()); err != nil {
			return HistoryFrame{}, err
		}
		b := &HistoryBatch{Messages: p.Batch.GetMessages()}
		return wrapHistory(HistoryFrame{Batch: b}, b.check())
	case *roompb.HistoryFrame_End:
		err := checkWireTypes(p.End.ProtoReflect())
		return wrapHistory(HistoryFrame{End: &HistoryEnd{More: p.End.GetMore()}}, err)
	default: // checkOnePart found exactly one part
		pe := pf.GetError()
		if err := checkWireTypes(pe.ProtoReflect()); err != nil {
			return HistoryFrame{}, err
		}
		code := ErrorCode(pe.GetCode())
		if err := checkCode(code); err != nil {
			return HistoryFrame{}, err
		}
		if err := checkErrorMessage(pe.GetMessage()); err != nil {
			return HistoryFrame{}, err
		}
		return HistoryFrame{Error: &RemoteError{Code: code, Message: pe.GetMessage()}}, nil
	}
}

func wrapHistory(f HistoryFrame, err error) (HistoryFrame, error) {
	if err != nil {
		return HistoryFrame{}, err
	}
	return f, nil
}

// decodeHistoryRequest checks a request, its version first, so that a
// request of another version is reported as such whatever else it holds.
func decodeHistoryRequest(pr *roompb.HistoryRequest) (*HistoryRequest, error) {
	if v := pr.GetVersion(); v != HistoryVersion {
		return nil, fmt.Errorf("%w: history request version %d; this side speaks only version %d",
			ErrUnsupportedVersion, v, HistoryVersion)
	}
	if err := checkWireTypes(pr.ProtoReflect()); err != nil {
		return nil, err
	}
	if len(pr.GetHave()) > MaxHistoryAuthors { // before converting them
		return nil, fmt.Errorf("%w: request lists %d authors, more than the %d allowed",
			ErrFrameTooLarge, len(pr.GetHave()), MaxHistoryAuthors)
	}
	r := &HistoryRequest{Topic: pr.GetTopic(), Have: make([]HistoryHave, 0, len(pr.GetHave())),
		Max: int(pr.GetMaxMessages()), Since: pr.GetSince(), Latest: pr.GetLatest()}
	held := 0
	for i, h := range pr.GetHave() {
		if err := checkWireTypes(h.ProtoReflect()); err != nil {
			return nil, fmt.Errorf("%w (have %d)", err, i)
		}
		if err := checkHistoryAuthor(i, h.GetAuthor()); err != nil {
			return nil, err
		}
		if held += len(h.GetHeld()); held > MaxHistoryHeld { // before converting them
			return nil, fmt.Errorf("%w: request lists more than %d held ranges", ErrFrameTooLarge, MaxHistoryHeld)
		}
		have := HistoryHave{Author: peer.ID(h.GetAuthor()), Through: h.GetThrough()}
		for k, hr := range h.GetHeld() {
			if err := checkWireTypes(hr.ProtoReflect()); err != nil {
				return nil, fmt.Errorf("%w (have %d, held range %d)", err, i, k)
			}
			have.Held = append(have.Held, HistoryRange{From: hr.GetFrom(), To: hr.GetTo()})
		}
		r.Have = append(r.Have, have)
	}
	if len(r.Have) == 0 {
		r.Have = nil
	}
	return r, r.check()
}

// HistoryWriter writes /kith/history/1.0.0 frames to a stream. It is not
// safe for concurrent use.
type HistoryWriter struct {
	w   io.Writer
	err error // sticky: after a failed write the stream is out of step
}

// NewHistoryWriter returns a writer of frames to w, typically a
// network.Stream.
func NewHistoryWriter(w io.Writer) *HistoryWriter { return &HistoryWriter{w: w} }

// Write checks f by the rules HistoryReader.Read applies and writes it,
// length prefix and body, with a single Write call on the underlying
// writer. A frame that breaks a rule is not written: the error wraps
// ErrMalformed or ErrFrameTooLarge and the writer stays usable. An error of
// the underlying writer is final. A request is written with version
// HistoryVersion.
func (w *HistoryWriter) Write(f HistoryFrame) error {
	if w.err != nil {
		return w.err
	}
	buf, err := encodeHistoryFrame(f)
	if err != nil {
		return err
	}
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("protocols: writing a frame: %w", err)
		return w.err
	}
	return nil
}

// WriteMessages writes msgs in as few Batch frames as fit MaxHistoryFrame,
// in order. A message that breaks a rule (empty, longer than
// MaxHistoryRawMessage) is refused before anything is written.
func (w *HistoryWriter) WriteMessages(msgs [][]byte) error {
	for i, m := range msgs {
		if err := checkHistoryMessage(i, len(m)); err != nil {
			return err
		}
	}
	for len(msgs) > 0 {
		n, size := 0, 0
		for n < len(msgs) {
			s := protowire.SizeTag(1) + protowire.SizeBytes(len(msgs[n]))
			if historyBatchFrameSize(size+s) > MaxHistoryFrame {
				break
			}
			size += s
			n++
		}
		if err := w.Write(HistoryFrame{Batch: &HistoryBatch{Messages: msgs[:n]}}); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// historyBatchFrameSize is the size of a frame body holding a batch whose
// own body is n bytes.
func historyBatchFrameSize(n int) int { return protowire.SizeTag(2) + protowire.SizeBytes(n) }

// encodeHistoryFrame checks f and returns it as length prefix and protobuf
// body.
func encodeHistoryFrame(f HistoryFrame) ([]byte, error) {
	pf, err := f.toPB()
	if err != nil {
		return nil, err
	}
	limit := MaxHistoryFrame
	if f.Request != nil {
		limit = MaxHistoryRequest
	}
	return marshalFrame(pf, limit)
}

func (f HistoryFrame) toPB() (*roompb.HistoryFrame, error) {
	if err := f.checkParts(); err != nil {
		return nil, err
	}
	switch {
	case f.Request != nil:
		if err := f.Request.check(); err != nil {
			return nil, err
		}
		pr := &roompb.HistoryRequest{Version: HistoryVersion, Topic: f.Request.Topic,
			MaxMessages: uint32(f.Request.Max), Since: f.Request.Since, Latest: f.Request.Latest}
		for _, h := range f.Request.Have {
			ph := &roompb.HistoryHave{Author: []byte(h.Author), Through: h.Through}
			for _, r := range h.Held {
				ph.Held = append(ph.Held, &roompb.HistoryRange{From: r.From, To: r.To})
			}
			pr.Have = append(pr.Have, ph)
		}
		return &roompb.HistoryFrame{Part: &roompb.HistoryFrame_Request{Request: pr}}, nil
	case f.Batch != nil:
		if err := f.Batch.check(); err != nil {
			return nil, err
		}
		return &roompb.HistoryFrame{Part: &roompb.HistoryFrame_Batch{
			Batch: &roompb.HistoryBatch{Messages: f.Batch.Messages}}}, nil
	case f.End != nil:
		return &roompb.HistoryFrame{Part: &roompb.HistoryFrame_End{End: &roompb.HistoryEnd{More: f.End.More}}}, nil
	default:
		if err := checkCode(f.Error.Code); err != nil {
			return nil, err
		}
		if err := checkErrorMessage(f.Error.Message); err != nil {
			return nil, err
		}
		return &roompb.HistoryFrame{Part: &roompb.HistoryFrame_Error{Error: &roompb.HistoryError{
			Code: roompb.HistoryError_Code(f.Error.Code), Message: f.Error.Message}}}, nil
	}
}
