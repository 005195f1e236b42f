package protocols

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The framing that /kith/dm/1.0.0 and /kith/files/1.0.0 share: a minimal
// uvarint length prefix, then a protobuf Frame of that many bytes whose parts
// are the fields of a oneof. The package documentation specifies it (section
// "Direct messages", Framing).

// byteReaderOf returns r itself when it is an io.ByteReader, otherwise a
// reader of one byte at a time from r, so that a frame reader never consumes
// bytes past the frame it reads.
func byteReaderOf(r io.Reader) io.ByteReader {
	if br, ok := r.(io.ByteReader); ok {
		return br
	}
	return &oneByteReader{r: r}
}

// readLength reads a frame's length prefix: a minimal unsigned varint of at
// most 10 bytes whose value is at most limit. It returns io.EOF itself when
// the stream ends before the first byte.
func readLength(br io.ByteReader, limit int) (int, error) {
	var x uint64
	for i := 0; ; i++ { // i < 10: the tenth byte ends the varint or is an error
		b, err := br.ReadByte()
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
		if x > uint64(limit) {
			return 0, fmt.Errorf("%w: length prefix says %d bytes, more than the %d allowed",
				ErrFrameTooLarge, x, limit)
		}
		return int(x), nil
	}
}

// bodyStep is the most a reader allocates for a frame's body before its
// bytes arrive.
const bodyStep = 64 << 10

// readBody reads a frame's body of n bytes, n already checked against its
// limit. It allocates as the bytes arrive, not as the length prefix claims:
// a peer that claims a frame of 16 MiB (MaxFilesFrame) and sends nothing
// makes the reader allocate bodyStep, and one that sends part of it about
// twice that part, so memory follows what a peer sends. A body of at most
// bodyStep bytes takes one allocation.
func readBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, bodyStep))
	for done := 0; ; {
		m, err := io.ReadFull(r, buf[done:])
		done += m
		if err != nil {
			return nil, err
		}
		if done == n {
			return buf, nil
		}
		grown := make([]byte, min(n, 2*len(buf)))
		copy(grown, buf)
		buf = grown
	}
}

// readError reports a failed read of what: the end of the stream inside a
// frame is malformed; other errors come from the stream. The end is io.EOF
// or io.ErrUnexpectedEOF itself, as readers return it: yamux reports a
// stream whose connection ended without a goodbye (the peer's process was
// killed, its kernel closed the TCP connection) as "stream reset:
// connection closed: EOF", which wraps io.EOF, and that is the network's
// failure, not a frame the peer cut short.
func readError(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: stream ended inside the %s: %w", ErrMalformed, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("protocols: reading the %s: %w", what, err)
}

// checkOnePart walks the top-level fields of a Frame that proto.Unmarshal
// accepted: exactly one of fields 1 to parts (the oneof's parts, named by
// names in errors), length-delimited. Protobuf would otherwise keep the last
// of several parts, merge repeated ones, and keep a part of the wrong wire
// type as an unknown field.
func checkOnePart(b []byte, parts protowire.Number, names string) error {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeField(b)
		if l < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(l))
		}
		b = b[l:]
		if num < 1 || num > parts {
			continue // unknown field: ignored
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: frame field %d has wire type %d, want %d (length-delimited)",
				ErrMalformed, num, typ, protowire.BytesType)
		}
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: frame has %d parts; it must have exactly one of %s", ErrMalformed, n, names)
	}
	return nil
}

// checkWireTypes rejects a known field of m that was sent with the wrong wire
// type: protobuf keeps such a field as an unknown one, which would make it
// read as absent.
func checkWireTypes(m protoreflect.Message) error {
	if why := wrongWireType(m); why != "" {
		return fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	return nil
}

// wrongWireType says which known field of m was sent with the wrong wire
// type, or returns "" when none was.
func wrongWireType(m protoreflect.Message) string {
	fields := m.Descriptor().Fields()
	for b := m.GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return protowire.ParseError(n).Error()
		}
		b = b[n:]
		if fd := fields.ByNumber(num); fd != nil {
			return fmt.Sprintf("%s field %s has the wrong wire type %d", m.Descriptor().Name(), fd.Name(), typ)
		}
	}
	return ""
}

// protoError is the text of an error of package proto, whose "proto:" prefix
// is followed by a space or, at random, a no-break space (so that nobody
// compares its texts); this is always a space.
func protoError(err error) string {
	return strings.Replace(err.Error(), "\u00a0", " ", 1)
}

// oneByteReader reads one byte at a time from a reader that is not an
// io.ByteReader, so that a frame reader never consumes bytes past a frame.
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

// marshalFrame returns pf behind its length prefix, encoded
// deterministically, or ErrFrameTooLarge when its body is over limit.
func marshalFrame(pf proto.Message, limit int) ([]byte, error) {
	size := proto.Size(pf)
	if size > limit {
		return nil, fmt.Errorf("%w: frame is %d bytes, more than the %d allowed", ErrFrameTooLarge, size, limit)
	}
	buf := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen32+size), uint64(size))
	buf, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(buf, pf)
	if err != nil {
		return nil, fmt.Errorf("protocols: encoding a frame: %w", err)
	}
	return buf, nil
}
