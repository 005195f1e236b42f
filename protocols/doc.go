// Package protocols is kith's wire format and nothing else: protocol IDs,
// framing, message types, limits and error codes. It opens no connections,
// keeps no state and makes no policy decisions; chat, files and node build on
// it. It must not import any other kith package.
//
// This documentation is the specification. Code and golden vectors
// (testdata/) follow it; a change to a byte layout described here is a change
// to the wire format and bumps the version it names. Sections for rooms and
// files will be added here with their protocols.
//
// # Tickets
//
// A ticket is the one copy-pasteable string a user shares: it names a peer,
// optionally how to reach it, and for a file transfer a content ID and a
// secret. "kith id" prints one; "kith receive TICKET" takes one. Ticket,
// Ticket.String and ParseTicket implement this section.
//
// Text form:
//
//	ticket = "kith1" base32(payload)
//
// base32 is RFC 4648 section 6 base32 written in lowercase
// ("abcdefghijklmnopqrstuvwxyz234567"), without "=" padding, so its length
// modulo 8 is never 1, 3 or 6, and the unused low bits of the last character
// must be zero. A reader ignores surrounding whitespace, then rejects a
// string longer than 4096 characters before decoding anything. It accepts
// any case for both the prefix and the base32 text; whitespace or any other
// character inside the ticket is an error. A writer emits lowercase with no
// whitespace.
//
// Payload:
//
//	payload = version *field
//	version = 0x01                    ; one byte
//	field   = type length value
//	type    = uvarint
//	length  = uvarint                 ; number of value bytes
//	value   = length bytes
//
// A uvarint is unsigned LEB128 as read by encoding/binary.Uvarint: at most 10
// bytes, value below 2^64, and minimal (a varint longer than one byte does not
// end in 0x00). A length larger than the bytes remaining in the payload is an
// error, checked before the value is read.
//
// Fields:
//
//	type  name        value                               count
//	1     peer ID     binary peer ID (identity multihash   exactly once, first
//	                  of an Ed25519 public key, 38 bytes)
//	2     address     binary multiaddr, 1..512 bytes       0 to 16
//	3     content ID  1..64 bytes (opaque here)            0 or 1
//	4     secret      16..64 bytes                         0 or 1
//
// The peer ID must be an Ed25519 key in the canonical form
// peer.IDFromPublicKey produces; RSA, secp256k1, ECDSA and hashed (Qm...) IDs
// are rejected. An address may contain /p2p/<id> only as a relay hop, that is
// directly followed by /p2p-circuit (for example
// /ip4/198.51.100.7/tcp/4001/p2p/<relay>/p2p-circuit); a trailing
// /p2p/<peer ID> is left out by writers and is an error for readers, as is a
// /p2p/ of any other peer.
//
// Canonical form: fields appear in ascending type order; only type 2 repeats,
// in the order of Ticket.Addrs; empty addresses, content IDs and secrets are
// not written. Readers reject anything else, so a ticket that parses
// re-encodes to exactly the same string (trimmed and lowercased). Every field
// type other than 1 to 4 is an error: readers never skip unknown fields,
// because a ticket decides whom a user trusts. A new field or a change to a
// field bumps the version byte; a reader that sees a version above 1 reports
// that the ticket comes from a newer kith.
//
// The 4096-character limit allows a payload of at most 2560 bytes, so it, not
// the per-field limits, is what bounds the addresses a writer can include; a
// writer should offer its few most useful addresses.
//
// Golden vectors are in testdata/tickets: each NAME.ticket has the decoded
// fields in NAME.json and the Ed25519 seed its peer ID was made from.
//
// Every parse error wraps ErrTicket and says what is wrong, for example
// "protocols: invalid ticket: address 2: belongs to another peer (/p2p/12D3...)".
// Fields and addresses are numbered from 1. Errors never quote the ticket
// text (which may carry a secret), only a single offending character.
//
// # Direct messages
//
// A direct message travels from one peer to another on a stream of its own
// protocol, DMProtocol ("/kith/dm/1.0.0"), inside the connection's secure
// channel (Noise or TLS 1.3), so it is end-to-end encrypted even through a
// relay. DMReader and DMWriter implement this section; package chat runs the
// exchange over a libp2p stream.
//
// The exchange. The sender opens a stream and writes one or more Message
// frames. The receiver answers every Message, in order, with one frame:
//
//   - Ack, carrying the message's id, once it has stored the message durably
//     (so that it survives a crash of the receiver); or
//   - Error, refusing the message. The receiver then reads no more frames and
//     closes the stream.
//
// The sender may write its next Message before the answer to the previous one
// arrives; the answers still come in order. An Error refuses the oldest
// unanswered Message; a receiver may send it as soon as it knows, for
// NOT_ALLOWED even before it reads the first Message. A receiver applies its
// policy to every Message, so it may refuse one with NOT_ALLOWED or BLOCKED
// on a stream whose earlier Messages it acked. When it has nothing more to
// send, the sender closes its write side; the receiver, having answered
// everything, sees the end of the stream between two frames and closes the
// stream. The end of the stream inside a frame is MALFORMED.
//
// A sender may keep a stream open once every Message on it is answered, and
// write more Messages on it later. The receiver bounds its wait for each
// frame with a deadline (kith: 30 s for the first, 60 s for each later one);
// when it passes, the receiver closes the stream without an Error, as
// nothing is left to refuse (earlier kith receivers answered INTERNAL). A
// sender closes a stream it keeps well before that (kith: after 15 s without
// a delivery), and gives up a kept stream on which anything arrived while it
// was idle: the end of the stream, a reset, a frame. A kept stream can still
// break under a new Message (the receiver restarted, the connection
// dropped); the sender then sends the Messages not acked on it again, on a
// new stream.
//
// The sender of a message is the stream's remote peer, authenticated by the
// secure channel; no field names it. The receiver stores a message once per
// sender and id: a message it already holds is acked again but not stored
// twice, so a sender that lost an answer (the stream broke) retries the
// message with the same id on a new stream.
//
// Only the sender writes Message frames and only the receiver writes Ack and
// Error frames. A receiver that reads an Ack or an Error answers UNEXPECTED. A
// sender that reads a Message, an Ack whose id is not the oldest unanswered
// message's, or anything after an Error, resets the stream. Every message
// that was not acked (the refused one, those written after it, those on a
// broken stream) is undelivered.
//
// Framing. A frame is a length prefix followed by a protobuf message (proto3)
// of that many bytes, the "delimited" framing of go-msgio/pbio and other
// libp2p protocols:
//
//	frame  = length body
//	length = uvarint        ; number of body bytes, 0 to MaxDMFrame (66560)
//	body   = length bytes   ; a protobuf kith.dm.v1.Frame
//
// The uvarint is unsigned LEB128, minimal, at most 10 bytes (a valid length
// takes at most 3). A reader checks the length against MaxDMFrame before it
// allocates or reads anything for the body: a larger length (2^63, 2^32,
// 66561) is TOO_LARGE; a varint that is not minimal, is longer than 10 bytes
// or overflows 64 bits is MALFORMED.
//
// The body (the schema, with the Error codes, is internal/pb/dm.proto):
//
//	message Frame {
//	  oneof part {
//	    Message message = 1;
//	    Ack     ack     = 2;
//	    Error   error   = 3;
//	  }
//	}
//	message Message {
//	  uint32 version = 1;  // must be 1
//	  bytes  id      = 2;  // exactly 16 bytes
//	  int64  sent_at = 3;  // Unix milliseconds, > 0
//	  string text    = 4;  // UTF-8, at most 65536 bytes
//	}
//	message Ack {
//	  bytes id = 1;        // exactly 16 bytes
//	}
//	message Error {
//	  Code   code    = 1;  // see below; never 0
//	  string message = 2;  // UTF-8, at most 256 bytes, no control characters
//	}
//
// Readers and writers both apply these rules:
//
//   - A Frame has exactly one part, present once and length-delimited. An
//     empty frame (length 0), a frame of only fields this version does not
//     know, a frame with two parts and a frame with one part twice are
//     MALFORMED (protobuf alone would keep the last part, or merge them).
//   - A known field sent with another wire type than the schema's is
//     MALFORMED (protobuf alone would keep it as an unknown field and read
//     the field as absent).
//   - Message.version is checked before anything else in the Message: any
//     value but 1, including 0 (absent), is UNSUPPORTED_VERSION, whatever the
//     other fields hold. A receiver never reads a message of a version it does
//     not know as version 1.
//   - id is exactly 16 bytes, chosen at random by the sender.
//   - sent_at is the sender's clock when it wrote the message, in
//     milliseconds since 1970-01-01 UTC, and must be above 0. It is for
//     display and ordering hints only; nothing trusts it.
//   - text is valid UTF-8 of at most MaxDMText (65536) bytes; longer is
//     TOO_LARGE. It may be empty and may contain any character: a user
//     interface neutralises control characters before it shows received
//     text.
//   - Error.code is above 0. A code DM does not use (above 8) is accepted:
//     it comes from a newer peer, and is shown by its name when it has one
//     (codes 9 to 12 belong to file transfer) or as "code(N)". Error.message
//     is a hint for humans, possibly empty: valid UTF-8 of at most
//     MaxDMErrorMessage (256) bytes (longer is TOO_LARGE) without control
//     characters. It never holds local details such as paths or internal
//     error texts.
//
// Unknown fields are accepted and ignored in every message (forward
// compatibility): a later revision may add optional fields that older peers
// skip. A field that a receiver must understand cannot be added that way; it
// needs a new Message.version or a new protocol ID.
//
// Versions. The protocol ID names the framing, the frames and the exchange: a
// change to any of them is a new protocol ID (/kith/dm/2.0.0), chosen by
// multistream-select, which refuses IDs a peer does not know.
// Message.version names the meaning of a Message; only version 1 exists. A
// sender that gets UNSUPPORTED_VERSION keeps the message undelivered: it
// never resends it under another version or protocol ID by itself (no
// silent downgrade).
//
// Error codes (ErrorCode), and whether a sender may retry a refused message:
//
//	code  name                 the receiver refuses because              retry
//	0     UNSPECIFIED          (never sent; MALFORMED if received)
//	1     MALFORMED            the frame breaks a rule above             no
//	2     TOO_LARGE            a length, the text or error message is    no
//	                           too long
//	3     UNSUPPORTED_VERSION  Message.version is not 1                  no
//	4     NOT_ALLOWED          it takes no messages from this peer       when allowed
//	5     BLOCKED              it has blocked this peer                  when unblocked
//	6     RATE_LIMITED         this peer sends too many messages         later
//	7     INTERNAL             it failed (for example, its store)        later
//	8     UNEXPECTED           the frame is not a Message                no
//
// Codes 9 to 12 belong to file transfer (section "File transfer"); a DM
// receiver never sends them.
//
// A receiver may answer NOT_ALLOWED rather than BLOCKED so as not to reveal a
// block. When a frame fails to read, the receiver answers the code
// ErrorCodeFor gives for the error (after a TOO_LARGE length, without reading
// the body), unless the stream itself failed or the read's deadline passed.
// Timeouts are not part of the wire format, but implementations bound every
// read and write with a deadline.
//
// Example: the Ack of the message whose id is the bytes 00 to 0f, 21 bytes in
// all,
//
//	14                     length 20
//	12 12                  field 2 (ack), 18 bytes
//	0a 10 00 01 .. 0f      field 1 (id), 16 bytes
//
// and that Message itself, sent at 2026-01-01T00:00:00Z with text "hi":
//
//	21                     length 33
//	0a 1f                  field 1 (message), 31 bytes
//	08 01                  field 1 (version): 1
//	12 10 00 01 .. 0f      field 2 (id), 16 bytes
//	18 80 d0 ea b6 b7 33   field 3 (sent_at): 1767225600000
//	22 02 68 69            field 4 (text), 2 bytes: "hi"
//
// Golden vectors are in testdata/dm: each NAME.hex is one frame, length
// prefix included, in hex, and NAME.json its decoded fields.
//
// Every error DMReader.Read returns about a frame wraps ErrFrameTooLarge,
// ErrMalformed or ErrUnsupportedVersion and says what is wrong, for example
// "protocols: malformed frame: message id is 15 bytes; it must be exactly 16".
package protocols
