package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
)

// Prefix is a length prefix claiming n bytes: a minimal uvarint.
func Prefix(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// Frame is body after a correct length prefix.
func Frame(body []byte) []byte { return append(Prefix(uint64(len(body))), body...) }

// Part is a frame body whose part (a oneof field) num holds inner.
func Part(num protowire.Number, inner []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
}

// Field appends field num to b: a varint for a uint64, length-delimited for
// []byte and string.
func Field[V uint64 | []byte | string](b []byte, num protowire.Number, v V) []byte {
	switch x := any(v).(type) {
	case uint64:
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), x)
	case []byte:
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), x)
	default:
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), x.(string))
	}
}

// LongVarint is a length prefix of 11 bytes: ten with the continuation bit,
// then 0x01. No valid varint is longer than 10 bytes.
func LongVarint() []byte { return append(bytes.Repeat([]byte{0x80}, 10), 0x01) }

// A Spec is the first frame of one kith exchange, which it builds well or
// badly, and the reader of the answer. Make one with DM, FilesOffer,
// FilesFetch or History.
type Spec struct {
	// Name says which exchange, for test names: "dm", "files-offer", ...
	Name string
	// ID is the protocol the frame is written on.
	ID protocol.ID
	// Limit is the most bytes the receiver accepts after this frame's
	// length prefix (for files: from a peer allowed to offer).
	Limit int

	part  protowire.Number // the first frame's part
	rest  []byte           // the part's fields after its version
	valid []byte           // Valid: written by the real writer
	read  func(io.Reader) (*protocols.RemoteError, error)
}

// Valid is the frame as the real writer of package protocols writes it.
func (s Spec) Valid() []byte { return bytes.Clone(s.valid) }

// Version is the frame with in-band version v (1 is Valid's bytes).
func (s Spec) Version(v uint64) []byte {
	return Frame(Part(s.part, append(Field(nil, 1, v), s.rest...)))
}

// Oversized is a length prefix claiming n bytes followed by the first
// min(n, 64) bytes of a body: the receiver must refuse it from the prefix
// alone.
func (s Spec) Oversized(n uint64) []byte {
	body := s.valid[len(Prefix(uint64(len(s.valid)))):]
	return append(Prefix(n), body[:min(uint64(len(body)), n, 64)]...)
}

// LongVarint is an 11-byte length prefix followed by Valid's body.
func (s Spec) LongVarint() []byte {
	return append(LongVarint(), s.valid[len(Prefix(uint64(len(s.valid)))):]...)
}

// WrongWireType is the frame with the field after the version (the DM's
// id, the transfer ID, the topic) sent as a varint rather than
// length-delimited: protobuf alone would read that field as absent. (The
// version itself sent with a wrong wire type reads as version 0, which is
// UNSUPPORTED_VERSION, as the spec checks the version first.)
func (s Spec) WrongWireType() []byte {
	_, _, n := protowire.ConsumeField(s.rest)
	inner := Field(Field(nil, 1, uint64(1)), 2, uint64(7))
	return Frame(Part(s.part, append(inner, s.rest[n:]...)))
}

// TruncatedField is a well-framed body whose part's last field claims
// more bytes than the part holds.
func (s Spec) TruncatedField() []byte {
	inner := append(Field(nil, 1, uint64(1)), s.rest...)
	inner = inner[:len(inner)-1]
	return Frame(Part(s.part, inner))
}

// EndsInside is Valid without its last byte: a writer that then closes
// ends the stream inside the frame.
func (s Spec) EndsInside() []byte { return s.valid[:len(s.valid)-1] }

// UnknownFields is the frame with unknown fields added to the frame and to
// its part: a receiver ignores them and answers as it answers Valid.
func (s Spec) UnknownFields() []byte {
	inner := append(Field(nil, 1, uint64(1)), s.rest...)
	inner = Field(Field(inner, 99, uint64(7)), 100, "from a newer kith")
	return Frame(Field(Part(s.part, inner), 15, []byte{1, 2, 3}))
}

// ReadAnswer reads one frame of the answer with the real reader: the Error
// it holds, nil for any other frame, or the reader's error.
func (s Spec) ReadAnswer(r io.Reader) (*protocols.RemoteError, error) { return s.read(r) }

// DM is a /kith/dm/1.0.0 Message frame.
func DM(id [16]byte, sentAt time.Time, text string) Spec {
	var buf bytes.Buffer
	must(protocols.NewDMWriter(&buf).Write(protocols.DMFrame{
		Message: &protocols.DMMessage{ID: id, SentAt: sentAt, Text: text}}))
	rest := Field(Field(Field(nil, 2, id[:]), 3, uint64(sentAt.UnixMilli())), 4, text)
	if text == "" {
		rest = Field(Field(nil, 2, id[:]), 3, uint64(sentAt.UnixMilli()))
	}
	return Spec{Name: "dm", ID: protocols.DMProtocol, Limit: protocols.MaxDMFrame, part: 1, rest: rest,
		valid: buf.Bytes(), read: func(r io.Reader) (*protocols.RemoteError, error) {
			f, err := protocols.NewDMReader(r).Read()
			return f.Error, err
		}}
}

// FilesOffer is a /kith/files/1.0.0 Offer frame (push mode). The manifest
// is not checked here: a test passes a valid one, or a bad one on purpose.
func FilesOffer(transferID [16]byte, manifest []byte) Spec {
	var buf bytes.Buffer
	must(protocols.NewFilesWriter(&buf).Write(protocols.FilesFrame{
		Offer: &protocols.FileOffer{TransferID: transferID, Manifest: manifest}}))
	rest := Field(Field(nil, 2, transferID[:]), 3, manifest)
	return filesSpec("files-offer", 1, rest, buf.Bytes(), protocols.MaxFilesFrame)
}

// FilesFetch is a /kith/files/1.0.0 Fetch frame in ticket mode (all-zero
// transfer ID, a secret of 16 to 64 bytes), wanting the manifest.
func FilesFetch(contentID protocols.Hash, secret []byte) Spec {
	var buf bytes.Buffer
	must(protocols.NewFilesWriter(&buf).Write(protocols.FilesFrame{
		Fetch: &protocols.FileFetch{ContentID: contentID, Secret: secret, WantManifest: true}}))
	var zero [16]byte
	rest := Field(Field(Field(Field(nil, 2, zero[:]), 3, contentID[:]), 4, secret), 5, uint64(1))
	return filesSpec("files-fetch", 3, rest, buf.Bytes(), protocols.MaxFilesFrame)
}

func filesSpec(name string, part protowire.Number, rest, valid []byte, limit int) Spec {
	return Spec{Name: name, ID: protocols.FilesProtocol, Limit: limit, part: part, rest: rest, valid: valid,
		read: func(r io.Reader) (*protocols.RemoteError, error) {
			f, err := protocols.NewFilesReader(r).Read(protocols.MaxFilesFrame)
			return f.Error, err
		}}
}

// History is a /kith/history/1.0.0 HistoryRequest frame for topic, asking
// for up to max messages, with no haves.
func History(topic string, max int) Spec {
	var buf bytes.Buffer
	must(protocols.NewHistoryWriter(&buf).Write(protocols.HistoryFrame{
		Request: &protocols.HistoryRequest{Topic: topic, Max: max}}))
	rest := Field(Field(nil, 2, topic), 4, uint64(max))
	return Spec{Name: "history", ID: protocols.HistoryProtocol, Limit: protocols.MaxHistoryRequest, part: 1,
		rest: rest, valid: buf.Bytes(), read: func(r io.Reader) (*protocols.RemoteError, error) {
			f, err := protocols.NewHistoryReader(r).Read(protocols.MaxHistoryFrame)
			return f.Error, err
		}}
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("hostile: the real writer refused a frame meant to be valid: %v", err))
	}
}
