// Package protocols is kith's wire format and nothing else: protocol IDs,
// framing, message types, limits and error codes. It opens no connections,
// keeps no state and makes no policy decisions; chat, files and node build on
// it. It must not import any other kith package.
//
// This documentation is the specification. Code and golden vectors
// (testdata/) follow it; a change to a byte layout described here is a change
// to the wire format and bumps the version it names. Sections for direct
// messages, rooms and files will be added here with their protocols.
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
package protocols
