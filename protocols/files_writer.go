package protocols

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// FilesWriter writes /kith/files/1.0.0 frames, and chunks with their data,
// to a stream. It is not safe for concurrent use.
type FilesWriter struct {
	w   io.Writer
	err error  // sticky: after a failed write the stream is out of step
	hdr []byte // WriteChunk's header, reused
}

// errUseWriteChunk refuses a Chunk frame in Write: its data must follow it.
var errUseWriteChunk = errors.New("protocols: a chunk is written with WriteChunk, header and data")

// NewFilesWriter returns a writer of frames to w, typically a
// network.Stream.
func NewFilesWriter(w io.Writer) *FilesWriter {
	return &FilesWriter{w: w}
}

// Write checks f by the same rules FilesReader.Read applies and writes it,
// length prefix and body, with a single Write call on the underlying writer.
// A frame that breaks a rule is not written: the error wraps ErrMalformed or
// ErrFrameTooLarge and the writer stays usable; so does a Chunk frame, which
// only WriteChunk writes. An error of the underlying writer is final: later
// calls return it again. Offer and Fetch frames are written with version
// FilesVersion.
func (w *FilesWriter) Write(f FilesFrame) error {
	if w.err != nil {
		return w.err
	}
	buf, err := encodeFilesFrame(f)
	if err != nil {
		return err
	}
	return w.write(buf)
}

// WriteChunk writes the Chunk frame h and then data, its Size bytes, with at
// most two Write calls on the underlying writer; data is passed on as it is,
// never copied. A header that breaks a rule (Size 0 or above ChunkSize) or
// does not match len(data) is not written, as in Write; errors of the
// underlying writer are final.
func (w *FilesWriter) WriteChunk(h ChunkHeader, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := checkChunkSize(h.Size); err != nil {
		return err
	}
	if len(data) != int(h.Size) {
		return fmt.Errorf("%w: chunk header says %d bytes, but the data is %d", ErrMalformed, h.Size, len(data))
	}
	w.hdr = appendChunkHeader(w.hdr[:0], h)
	if err := w.write(w.hdr); err != nil {
		return err
	}
	return w.write(data)
}

func (w *FilesWriter) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("protocols: writing a frame: %w", err)
		return w.err
	}
	return nil
}

// appendChunkHeader appends the Chunk frame h, length prefix included, in
// the bytes deterministic protobuf gives it (fields in order, zeros left
// out), without allocating.
func appendChunkHeader(b []byte, h ChunkHeader) []byte {
	var body [3 * (1 + binary.MaxVarintLen64)]byte
	c := body[:0]
	if h.Entry != 0 {
		c = protowire.AppendVarint(protowire.AppendTag(c, 1, protowire.VarintType), uint64(h.Entry))
	}
	if h.Index != 0 {
		c = protowire.AppendVarint(protowire.AppendTag(c, 2, protowire.VarintType), h.Index)
	}
	c = protowire.AppendVarint(protowire.AppendTag(c, 3, protowire.VarintType), uint64(h.Size))
	frameLen := protowire.SizeTag(6) + protowire.SizeBytes(len(c))
	b = binary.AppendUvarint(b, uint64(frameLen))
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	return append(protowire.AppendVarint(b, uint64(len(c))), c...)
}

// encodeFilesFrame checks f and returns it as length prefix and protobuf
// body.
func encodeFilesFrame(f FilesFrame) ([]byte, error) {
	pf, err := f.toPB()
	if err != nil {
		return nil, err
	}
	limit := MaxFilesControlFrame
	if f.Offer != nil || f.Serving != nil {
		limit = MaxFilesFrame
	}
	return marshalFrame(pf, limit) // never too large with the limits checked in toPB
}
