// Package hostile is a peer that speaks kith's stream protocols badly on
// purpose, for tests only: no kith binary or library imports it. It drives a
// libp2p host the test gives it and writes whatever bytes a test asks for,
// so that tests of real nodes and real services can check what they do with
// oversized, malformed, truncated, unknown-version, slow and replayed frames
// (RELIABILITY.md, section 4.3, rows B3 to B9). It keeps no state of its own.
//
// # Frames
//
// Frame, Prefix, Part, Field and LongVarint build raw bytes in the framing
// of package protocols (a uvarint length, then a protobuf frame whose one
// part is a oneof field). A Spec describes the first frame of one exchange,
// and builds it well or badly:
//
//	spec := hostile.DM(id, time.Now(), "hi")   // /kith/dm/1.0.0, a Message
//	spec.Valid()            // the frame protocols.DMWriter writes
//	spec.Version(2)         // the same frame with in-band version 2
//	spec.Oversized(1 << 32) // a length prefix of 2^32, then a few bytes
//	spec.LongVarint()       // an 11-byte length prefix
//	spec.WrongWireType()    // a known field sent with another wire type
//	spec.TruncatedField()   // a well-framed body whose last field is cut
//	spec.EndsInside()       // a frame the stream ends inside
//	spec.UnknownFields()    // Valid with unknown fields added (accepted)
//
// DM, FilesOffer, FilesFetch and History build Specs for the first frame
// of each kith exchange; Valid is written by the real writer of package
// protocols, and a test of this package checks that the raw builder gives
// the same bytes for version 1. A Spec also reads the answer with the real
// reader (Spec.ReadAnswer): the Error frame a peer refused with, if any.
//
// # Streams
//
// Attacker.Open connects, opens a stream and negotiates a protocol ID with
// multistream-select eagerly (never lazily, so "negotiated, then silent"
// means what it says, and an unknown ID fails in Open with
// multistream.ErrNotSupported). Stream.Send writes raw bytes; Stream.Answer
// reads the peer's answer within a bound and says whether it was an Error
// frame, a clean end or a reset; Stream.Drip is slowloris, one byte per
// interval until the peer gives up on the stream; Stream.Silent waits,
// sending nothing, for the same. Attacker.Replay writes a captured frame
// again on a new stream.
//
// # Checks
//
// CheckDeadline and CheckPerPeerLimit run row B6 against any victim: a
// slowloris stream and a silent one end at the victim's deadline, and a
// peer holding the service's per-peer number of streams gets no more while
// another peer is served. They take a testing.TB: this package is for tests.
//
// Tests that use it: node/hostile_test.go (B3, B4, B5, B9 against real
// nodes), chat/hostile_peer_test.go and files/hostile_peer_test.go (B6).
package hostile
