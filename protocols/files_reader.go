package protocols

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/kithnet/kith/protocols/internal/pb/filespb"
)

// FilesReader reads /kith/files/1.0.0 frames, and the data that follows a
// Chunk frame, from a stream. Like DMReader it reads exactly the bytes of
// each frame and nothing beyond it. It is not safe for concurrent use.
type FilesReader struct {
	r       io.Reader
	br      io.ByteReader // r itself when it is one; reads the length prefix
	err     error         // sticky: the stream is out of step after an error
	pending int           // bytes of the last Chunk's data not read yet
}

// NewFilesReader returns a reader of frames from r, typically a
// network.Stream.
func NewFilesReader(r io.Reader) *FilesReader {
	return &FilesReader{r: r, br: byteReaderOf(r)}
}

// Read reads and checks one frame of at most limit bytes after its length
// prefix: MaxFilesControlFrame where the caller expects no Offer or Serving,
// MaxFilesFrame where it may get one (a larger limit counts as
// MaxFilesFrame). A larger length is ErrFrameTooLarge, before anything is
// allocated for the frame.
//
// It returns io.EOF itself when the stream ends cleanly between frames.
// Every other error about the stream or a frame is final (later calls return
// it again). Errors about the frame wrap ErrFrameTooLarge, ErrMalformed or
// ErrUnsupportedVersion (see ErrorCodeFor); a stream that ends inside a frame
// is ErrMalformed and also matches io.ErrUnexpectedEOF. Errors of the
// underlying reader (a reset, a deadline) are wrapped without a sentinel.
//
// The manifest of an Offer or a Serving is only length-checked, not parsed
// (see ParseManifest). After a Chunk frame, its data must be read with
// ReadChunkData before the next Read; a Read before that is an error that
// changes nothing.
func (r *FilesReader) Read(limit int) (FilesFrame, error) {
	if r.err != nil {
		return FilesFrame{}, r.err
	}
	if r.pending > 0 {
		return FilesFrame{}, fmt.Errorf("protocols: Read with %d bytes of chunk data not read yet", r.pending)
	}
	f, err := r.read(max(0, min(limit, MaxFilesFrame)))
	if err != nil {
		r.err = err
		return FilesFrame{}, err
	}
	if f.Chunk != nil {
		r.pending = int(f.Chunk.Size)
	}
	return f, nil
}

// ReadChunkData reads exactly len(buf) bytes of the data that follows the
// last Chunk frame (io.ReadFull, straight into buf). A chunk's data may be
// read in several calls; reading more than is left of it is an error that
// changes nothing. A stream that ends inside the data is ErrMalformed and
// matches io.ErrUnexpectedEOF; that and the errors of the underlying reader
// are final, as in Read.
func (r *FilesReader) ReadChunkData(buf []byte) error {
	if r.err != nil {
		return r.err
	}
	if len(buf) > r.pending {
		return fmt.Errorf("protocols: ReadChunkData of %d bytes with %d bytes of chunk data left",
			len(buf), r.pending)
	}
	if _, err := io.ReadFull(r.r, buf); err != nil {
		r.err = readError(fmt.Sprintf("chunk data (%d bytes left)", r.pending), err)
		return r.err
	}
	r.pending -= len(buf)
	return nil
}

func (r *FilesReader) read(limit int) (FilesFrame, error) {
	n, err := readLength(r.br, limit)
	if err != nil {
		return FilesFrame{}, err
	}
	body, err := readBody(r.r, n)
	if err != nil {
		return FilesFrame{}, readError(fmt.Sprintf("frame of %d bytes", n), err)
	}
	return decodeFilesFrame(body)
}

// decodeFilesFrame decodes and checks the protobuf Frame in body: its one
// part, the part's version (Offer and Fetch) before anything else in it, the
// wire types of its fields, then its fields.
func decodeFilesFrame(body []byte) (FilesFrame, error) {
	var pf filespb.Frame
	if err := proto.Unmarshal(body, &pf); err != nil {
		return FilesFrame{}, fmt.Errorf("%w: %s", ErrMalformed, protoError(err))
	}
	if err := checkOnePart(body, 10, filesParts); err != nil {
		return FilesFrame{}, err
	}
	if err := checkFilesVersion(&pf); err != nil {
		return FilesFrame{}, err
	}
	if err := checkWireTypes(partMessage(&pf).ProtoReflect()); err != nil {
		return FilesFrame{}, err
	}
	return decodeFilesPart(&pf)
}

// checkFilesVersion checks the version of an Offer or a Fetch: any value but
// FilesVersion, including 0 (absent), is unsupported.
func checkFilesVersion(pf *filespb.Frame) error {
	what, v := "", uint32(0)
	switch {
	case pf.GetOffer() != nil:
		what, v = "offer", pf.GetOffer().GetVersion()
	case pf.GetFetch() != nil:
		what, v = "fetch", pf.GetFetch().GetVersion()
	default:
		return nil
	}
	if v != FilesVersion {
		return fmt.Errorf("%w: %s version %d; this side speaks only version %d",
			ErrUnsupportedVersion, what, v, FilesVersion)
	}
	return nil
}

// partMessage returns the frame's part.
func partMessage(pf *filespb.Frame) proto.Message {
	switch p := pf.Part.(type) {
	case *filespb.Frame_Offer:
		return p.Offer
	case *filespb.Frame_OfferAck:
		return p.OfferAck
	case *filespb.Frame_Fetch:
		return p.Fetch
	case *filespb.Frame_Serving:
		return p.Serving
	case *filespb.Frame_Request:
		return p.Request
	case *filespb.Frame_Chunk:
		return p.Chunk
	case *filespb.Frame_Complete:
		return p.Complete
	case *filespb.Frame_Done:
		return p.Done
	case *filespb.Frame_Reject:
		return p.Reject
	default: // checkOnePart found exactly one part
		return pf.GetError()
	}
}
