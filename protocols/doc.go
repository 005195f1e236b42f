// Package protocols is kith's wire format and nothing else: protocol IDs,
// framing, message types, limits and error codes. It opens no connections,
// keeps no state and makes no policy decisions; chat, files and node build on
// it. It must not import any other kith package.
//
// This documentation is the specification. Code and golden vectors
// (testdata/) follow it; a change to a byte layout described here is a change
// to the wire format and bumps the version it names.
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
//
// # File transfer
//
// A file transfer moves files and directories, listed in a manifest, from a
// sender to a receiver on streams of its own protocol, FilesProtocol
// ("/kith/files/1.0.0"), inside the connection's secure channel. Manifest,
// ParseManifest, CheckPath, FilesReader and FilesWriter implement this
// section; package files runs the exchange over libp2p streams.
//
// A transfer is offered or shared:
//
//   - push mode: the sender offers the transfer to one peer (an Offer
//     stream); that peer, the receiver, accepts it by fetching it (Fetch
//     streams) or declines it (a Reject stream);
//   - ticket mode: the sender shares a ticket (section "Tickets") holding its
//     peer ID, the transfer's content ID (the 32 bytes of the hash, in the
//     ticket's content ID field) and a secret; whoever holds the ticket
//     fetches the transfer (Fetch streams), presenting the secret.
//
// A receiver fetches chunks of 1 MiB, verifies each against its BLAKE3 hash
// in the manifest before it keeps it, and asks for any chunks in any order on
// as many Fetch streams as it needs over time: it resumes an interrupted
// transfer by asking only for the chunks it has not verified. The protocol
// keeps no state of its own from one stream to the next.
//
// A sender may pace its chunks by the queueing delay it measures with
// libp2p's ping protocol (/ipfs/ping/1.0.0) on the connection the Fetch
// stream is on, so that messages on that connection are not held up behind
// them; a receiver should answer those pings (every kith node does). This
// uses no field and changes nothing on the files streams: a receiver that
// does not answer gets the chunks unpaced.
//
// The sender of a stream is its remote peer, authenticated by the secure
// channel; no field names it.
//
// Hashes. BLAKE3-256 is BLAKE3 (unkeyed, default mode) with 32 bytes of
// output (HashChunk). A file of size bytes is split into ChunkCount(size) =
// ceil(size / 1048576) chunks: chunk i holds bytes i*1048576 up to
// min((i+1)*1048576, size) of the file, so every chunk but the last holds
// exactly ChunkSize (1048576) bytes and the last holds 1 to ChunkSize; an
// empty file has no chunks (Entry.ChunkLen gives a chunk's size). Then
//
//	chunk hash    = BLAKE3-256(the chunk's bytes)
//	entry root    = BLAKE3-256(chunk hash 0 || chunk hash 1 || ...)
//	manifest root = BLAKE3-256(entry root 0 || entry root 1 || ...)
//	content ID    = BLAKE3-256(the manifest's bytes, exactly as sent)
//
// where || concatenates, an entry root is of zero bytes for an empty file or
// a directory, and the manifest root takes the entries in manifest order
// (Entry.Root, Manifest.Root, ContentID). The content ID names a transfer:
// it binds every path, size, mode and chunk hash.
//
// Manifests. A manifest is a protobuf kith.files.v1.Manifest (the schema is
// internal/pb/files.proto) of at most MaxManifestBytes (16777216) bytes:
//
//	message Manifest {
//	  uint32 version          = 1;  // must be 1
//	  uint32 chunk_size       = 2;  // must be 1048576
//	  repeated Entry entries  = 3;  // 1 to 10000
//	  bytes  root             = 4;  // exactly 32 bytes: the manifest root
//	}
//	message Entry {
//	  string path   = 1;  // see Paths
//	  bool   dir    = 2;  // a directory
//	  uint64 size   = 3;  // bytes of the file: 0 to 2^40; 0 for a directory
//	  uint32 mode   = 4;  // permission bits only: at most 0777
//	  bytes  chunks = 5;  // the chunk hashes in order, concatenated:
//	                      // exactly 32*ChunkCount(size) bytes
//	  bytes  root   = 6;  // exactly 32 bytes: the entry root
//	}
//
// ParseManifest applies these rules, in this order where it matters:
//
//   - A manifest longer than 16777216 bytes is TOO_LARGE, before anything of
//     it is decoded.
//   - version is checked before anything else: any value but 1, including 0
//     (absent), is UNSUPPORTED_VERSION.
//   - Wire types and unknown fields as in a DM frame: a known field of
//     another wire type is MALFORMED; unknown fields are ignored.
//   - chunk_size is 1048576 and root 32 bytes.
//   - 1 to MaxEntries (10000) entries: none is MALFORMED, more is TOO_LARGE.
//   - Each entry's path follows the rules of Paths below.
//   - Each entry's directory (its path up to the last "/", if it has one) is
//     a directory entry listed before it. So directories come before their
//     contents, and no file is anyone's directory.
//   - No two entries' paths are equal under FoldPath (NFC, then full Unicode
//     case folding): no duplicates, no two names that differ only in case or
//     normalization ("Ä" and "ä", "ß" and "SS"), which Windows and macOS
//     would store as one file.
//   - A directory has size 0, no chunk hashes, and a mode (0 to 0777) like
//     a file. A file has a size of at most MaxFileSize (2^40; more is
//     TOO_LARGE) and exactly ChunkCount(size) chunk hashes; the files of a
//     manifest total at most MaxTotalSize (2^42; more is TOO_LARGE).
//   - mode has no bit outside 0777: setuid, setgid, sticky and file type
//     bits are MALFORMED. A receiver never gives a file more permissions
//     than mode, and may give it fewer.
//   - Every entry's root, and the manifest's root, equals the root computed
//     from the chunk hashes; a manifest whose root does not match is
//     MALFORMED.
//
// Every other violation is MALFORMED. MaxManifestBytes binds before
// MaxFileSize and MaxTotalSize can: with 32 bytes per chunk hash a manifest
// holds at most about 520,000 chunk hashes, so files of about 500 GiB in
// all. A writer encodes deterministically (fields in number order, zero
// values left out; Manifest.Marshal); a reader does not insist on it, since
// a manifest is named by the hash of its bytes as sent, never by a
// re-encoding.
//
// Paths. An entry's path is relative to the folder the receiver receives
// into, names separated by "/". CheckPath and CheckName apply these rules,
// and reject what breaks them, never repair it (no "a//b" read as "a/b"):
//
//   - A path is valid UTF-8 of 1 to MaxPathBytes (1024) bytes with 1 to
//     MaxDepth (64) names; it does not start or end with "/" nor contain
//     "//".
//   - A name is 1 to MaxNameBytes (255) bytes, and not "." or "..".
//   - A name contains no "\", ":" (drive letters, NTFS streams) or
//     < > " | ? *, which Windows does not allow in names; no control
//     character (Cc, including NUL), no format character (Cf: the bidi
//     overrides U+202A to U+202E and U+2066 to U+2069, U+200B, U+FEFF, ...),
//     and no other character unicode.IsPrint refuses (spaces other than
//     U+0020 such as U+00A0, U+2028, U+2029, private-use, surrogate and
//     unassigned code points) or that has the Unicode property
//     Other_Default_Ignorable_Code_Point (such as the Hangul fillers U+115F
//     and U+3164). U+0020 (space) is allowed anywhere but at the end.
//   - A name does not end with "." or " ", which Windows drops.
//   - A name is not a Windows device name: CON, PRN, AUX, NUL, COM0 to COM9,
//     LPT0 to LPT9, COM and LPT followed by ¹, ² or ³, CONIN$ and CONOUT$, in
//     any case of the letters a to z, whether followed by nothing, by spaces,
//     or by "." and anything ("NUL.txt", "con .tar.gz").
//   - A name does not end in ".kith-partial" (PartialSuffix) under FoldPath:
//     a receiver writes a file it receives as NAME.kith-partial, and renames
//     it once verified.
//   - A name is in Unicode normalization form C (NFC).
//
// Which characters are assigned, NFC and case folding follow Unicode 15.0,
// the version of Go 1.26's unicode package and of golang.org/x/text; a kith
// built with another Unicode version may judge a name differently, so the
// version is part of this specification (TestUnicodeVersion pins it).
// What a receiver does with a name that exists already in its folder is not
// part of the wire format.
//
// Framing. Frames are framed as direct messages are (section "Direct
// messages", Framing): a minimal uvarint length, then a protobuf
// kith.files.v1.Frame of that many bytes. A reader checks the length against
// the largest frame it accepts at that point before it allocates or reads
// anything for the body: MaxFilesFrame (16778240) where an Offer or a
// Serving may come, MaxFilesControlFrame (1024) everywhere else (the longest
// other frame, an Error, takes 268 bytes). A larger length is TOO_LARGE.
//
//	message Frame {
//	  oneof part {
//	    Offer    offer     = 1;
//	    OfferAck offer_ack = 2;
//	    Fetch    fetch     = 3;
//	    Serving  serving   = 4;
//	    Request  request   = 5;
//	    Chunk    chunk     = 6;
//	    Complete complete  = 7;
//	    Done     done      = 8;
//	    Reject   reject    = 9;
//	    Error    error     = 10;  // as in DM, with all the codes below
//	  }
//	}
//	message Offer    { uint32 version = 1; bytes transfer_id = 2; bytes manifest = 3; }
//	message OfferAck { bytes transfer_id = 1; }
//	message Fetch    { uint32 version = 1; bytes transfer_id = 2; bytes content_id = 3;
//	                   bytes secret = 4; bool want_manifest = 5; }
//	message Serving  { bytes manifest = 1; }
//	message Request  { uint32 entry = 1; uint64 first = 2; uint32 count = 3; }
//	message Chunk    { uint32 entry = 1; uint64 index = 2; uint32 size = 3; }
//	message Complete { bytes root = 1; }
//	message Done     { }
//	message Reject   { bytes transfer_id = 1; }
//	message Error    { Code code = 1; string message = 2; }
//
// A Chunk frame is followed on the stream by exactly size bytes, the
// chunk's data, which belong to no frame; the next frame starts after them.
// The end of the stream inside a frame or inside a chunk's data is
// MALFORMED. Readers and writers apply the DM rules for a Frame's one part,
// wire types, unknown fields and Error frames, and these:
//
//   - Offer.version and Fetch.version are checked before anything else in
//     the Offer or Fetch: any value but FilesVersion (1) is
//     UNSUPPORTED_VERSION.
//   - transfer_id is exactly 16 bytes, chosen at random by the sender, and
//     never all zero, except in a Fetch in ticket mode, where it is all zero.
//   - Offer.manifest is 1 to 16777216 bytes, Serving.manifest 0 to 16777216
//     (longer is TOO_LARGE). The framing only counts them: the receiver
//     parses a manifest by the rules of Manifests (and answers a bad one
//     with the code of the rule it breaks).
//   - A Fetch has a content_id of exactly 32 bytes, and either a transfer_id
//     that is not all zero and no secret (push mode), or an all-zero
//     transfer_id and a secret of 16 to 64 bytes (ticket mode).
//   - Request.count is 1 to MaxRequestChunks (64): 0 is MALFORMED, more is
//     TOO_LARGE. Request.entry and Request.first are checked against the
//     manifest, not by the framing.
//   - Chunk.size is 1 to ChunkSize (1048576): 0 is MALFORMED, more is
//     TOO_LARGE.
//   - Complete.root is exactly 32 bytes.
//
// The exchange. The peer that opens a stream writes its first frame, which
// says what the stream is for: an Offer, a Fetch or a Reject. The other peer
// reads it with the MaxFilesFrame limit, or the MaxFilesControlFrame limit
// when it takes no offers from that peer (a stranger cannot then make it
// allocate a manifest's worth of memory; it answers a longer frame with
// NOT_ALLOWED or BLOCKED rather than TOO_LARGE), and answers any other first
// frame with UNEXPECTED. Each side closes the stream after the last frame it
// writes, as described below; a frame that arrives where this section
// allows none is answered with UNEXPECTED.
//
// Offer stream (push mode):
//
//  1. The sender writes Offer: the transfer's ID and its manifest.
//  2. The receiver answers OfferAck, with the same transfer ID, once it has
//     stored the offer durably (so that it survives a crash of the
//     receiver), or Error: NOT_ALLOWED (it takes no offers from this peer),
//     BLOCKED, RATE_LIMITED (too many of this peer's offers wait for an
//     answer, kith: 16; or this peer offers faster than the receiver takes
//     offers from one peer, kith: 16 at once, then 2 a second, counted
//     before the manifest is parsed), the code ErrorCodeFor gives for a
//     frame or manifest that breaks a rule (MALFORMED, TOO_LARGE,
//     UNSUPPORTED_VERSION), or INTERNAL. The stream ends there. A sender
//     offers a RATE_LIMITED offer again later, with back-off.
//
// A receiver holds an offer once per sender and transfer ID: it acks an offer
// it holds already (whatever it decided about it) again without storing it
// twice, so a sender that lost the answer offers again with the same ID on a
// new stream, until it reads an answer. The same ID with other manifest
// bytes is MALFORMED. An OfferAck says only that the offer is stored: the
// receiver's user decides later, and the receiver then opens a Fetch or a
// Reject stream.
//
// Fetch stream:
//
//  1. The receiver writes Fetch. In push mode: the offer's transfer ID, the
//     ContentID of the offered manifest, no secret. In ticket mode: an
//     all-zero transfer ID, and the content ID and the secret of the ticket.
//     It sets want_manifest when it does not hold the manifest yet (ticket
//     mode, first fetch).
//  2. The sender answers Serving, holding the manifest if and only if the
//     Fetch wanted it, or Error and the stream ends: UNKNOWN_TRANSFER when
//     it has no such transfer for this peer: in push mode no transfer with
//     this ID offered to the stream's remote peer with this content ID, in
//     ticket mode no shared transfer with this content ID and secret (the
//     sender compares secrets in constant time, and gives the same answer
//     for a wrong secret as for an unknown content ID, so that the answer
//     reveals nothing); CANCELLED when its user stopped the transfer;
//     SOURCE_CHANGED when its files no longer match the manifest; or
//     RATE_LIMITED, INTERNAL, or the code of a broken rule.
//  3. The receiver checks that the ContentID of a manifest in Serving is the
//     content ID it asked for, and parses it; otherwise it writes Error
//     (MALFORMED, or the code ParseManifest's error maps to) and ends the
//     stream.
//  4. The receiver writes Request frames, each for Count consecutive chunks
//     of one file. It may write several before the chunks of the first
//     arrive; it bounds the chunk bytes it has requested and not yet
//     received (kith: 16 MiB). It asks for any chunks in any order, never
//     for those of an empty file or a directory, which it creates itself.
//  5. The sender answers the Requests in the order it reads them. It checks
//     each against the manifest (Manifest.CheckRequest): an entry that does
//     not exist or is a directory, or chunks past the file's last (first +
//     count > ChunkCount(size), with first + count computed without
//     overflow), is answered with MALFORMED and the stream ends. Otherwise
//     it writes, for each chunk from first to first + count - 1 in order, a
//     Chunk frame (entry, index, size) followed by the chunk's bytes. It may
//     hash the bytes it read and answer SOURCE_CHANGED instead of sending a
//     chunk that does not match the manifest.
//  6. The receiver resets the stream (it cannot read on in step) when a
//     Chunk is not the next one of its oldest unanswered Request (entry and
//     index), or its size is not that chunk's size (Manifest.CheckChunk:
//     ChunkSize, or size - index*ChunkSize for the file's last chunk). It
//     reads the chunk's bytes and keeps them only if their hash is the
//     manifest's hash of that chunk; it requests a chunk whose hash differs
//     again (on this stream or a later one), and after the same chunk failed
//     3 times it writes Error SOURCE_CHANGED and the transfer fails.
//  7. When every chunk is verified and every file is in place (renamed from
//     NAME.kith-partial), with no Request unanswered, the receiver writes
//     Complete: the manifest root it computed from the chunk hashes it
//     verified. The sender answers Done if that is its manifest's root, and
//     Error ROOT_MISMATCH otherwise; the stream ends. The sender reports
//     the transfer as delivered once it has read a Complete with its root
//     (kith records that just before it writes Done), never earlier; the
//     receiver reports it done once it has read Done. So for a moment the
//     sender may say done while the receiver does not yet.
//
// Either side may end a Fetch stream with an Error at any time, after which
// it reads and writes nothing more on it; CANCELLED says that a user stopped
// the transfer, and the other side stops it too, without retrying. A
// receiver that completed a transfer but did not read Done may open a new
// Fetch stream, without want_manifest, and write Complete right after
// Serving; a sender answers a Fetch for a transfer it completed as before,
// for as long as it keeps the transfer.
//
// Reject stream (push mode):
//
//  1. The receiver writes Reject: it declines the offer with this transfer
//     ID, or gives up a transfer it had accepted.
//  2. The sender answers Done once it has recorded that (a transfer already
//     delivered stays delivered), or Error: UNKNOWN_TRANSFER when it offered
//     no transfer with this ID to this peer, or INTERNAL. The stream ends.
//
// A receiver sends Reject again on a new stream until it reads Done or
// UNKNOWN_TRANSFER.
//
// Timeouts are not part of the wire format, but implementations bound every
// read and write, of a frame or of a chunk's data, with a deadline (kith: 30
// s each), and reset a stream whose peer stalls longer.
//
// Versions. The protocol ID names the framing, the frames and the exchange: a
// change to any of them is a new protocol ID (/kith/files/2.0.0).
// Offer.version and Fetch.version name the meaning of an Offer or Fetch, and
// Manifest.version (with chunk_size) that of a manifest: its hashes, chunks
// and rules. Only version 1 of each exists. A peer that gets
// UNSUPPORTED_VERSION fails the transfer: it never offers or fetches it again
// under another version by itself (no silent downgrade).
//
// Error codes (ErrorCode), which side sends each in this protocol, and what
// the side that gets one does:
//
//	code  name                 sent by   because                                then
//	1     MALFORMED            both      a frame, manifest or request breaks    fail
//	                                     a rule above
//	2     TOO_LARGE            both      a length, count or size is over its    fail
//	                                     limit
//	3     UNSUPPORTED_VERSION  both      a version is not 1                     fail
//	4     NOT_ALLOWED          receiver  it takes no offers from this peer      retry when allowed
//	5     BLOCKED              receiver  it has blocked this peer               retry when unblocked
//	6     RATE_LIMITED         both      this peer offers or fetches too much   retry later
//	7     INTERNAL             both      it failed (its store, its disk)        retry later
//	8     UNEXPECTED           both      the frame is not one it expects here   fail
//	9     UNKNOWN_TRANSFER     sender    no such transfer for this peer, or a   fail
//	                                     wrong secret
//	10    CANCELLED            both      a user stopped the transfer            fail
//	11    SOURCE_CHANGED       both      the files no longer match the          fail
//	                                     manifest
//	12    ROOT_MISMATCH        sender    Complete's root is not the manifest's  fail
//
// "Retry" means the same exchange again, on a new stream, with the same
// transfer ID and manifest, after a back-off (kith: 1 s, doubling up to 5
// min); "fail" means the transfer stops for good (state failed), the code
// being its reason. A receiver may answer NOT_ALLOWED rather than BLOCKED
// so as not to reveal a block. When a frame or a manifest fails to read, a
// peer answers the code ErrorCodeFor gives for the error (after a TOO_LARGE
// length, without reading the body), unless the stream itself failed or a
// deadline passed, in which case it resets the stream.
//
// Limits, in one place:
//
//	ChunkSize             1048576   bytes of every chunk but a file's last
//	MaxEntries            10000     entries of a manifest
//	MaxPathBytes          1024      bytes of a path
//	MaxNameBytes          255       bytes of a name
//	MaxDepth              64        names in a path
//	MaxFileSize           2^40      bytes of a file
//	MaxTotalSize          2^42      bytes of a manifest's files together
//	MaxManifestBytes      16777216  bytes of a manifest
//	MaxRequestChunks      64        chunks of a Request
//	MaxFilesControlFrame  1024      bytes of a frame but Offer and Serving
//	MaxFilesFrame         16778240  bytes of any frame
//	(secret)              16 to 64  bytes of a Fetch's secret
//
// Example: the Request for chunks 0 and 1 of entry 5, 7 bytes in all,
//
//	06                     length 6
//	2a 04                  field 5 (request), 4 bytes
//	08 05                  field 1 (entry): 5
//	18 02                  field 3 (count): 2; first is 0, left out
//
// and the answer's first Chunk, if entry 5 were a file "hello, world\n":
//
//	06                     length 6
//	32 04                  field 6 (chunk), 4 bytes
//	08 05                  field 1 (entry): 5
//	18 0d                  field 3 (size): 13; index is 0, left out
//	68 65 6c .. 0a         the chunk's 13 bytes, after the frame
//
// Golden vectors are in testdata/files: each NAME.hex is one frame, length
// prefix included (and a chunk's data after it), in hex, and NAME.json its
// decoded fields; manifest.hex is a manifest and manifest.json its entries,
// each file's content (text, or pattern_len bytes of which byte i is i %
// 251), every chunk hash and root, and its content ID.
//
// Every error FilesReader.Read returns about a frame wraps ErrFrameTooLarge,
// ErrMalformed or ErrUnsupportedVersion and says what is wrong, for example
// "protocols: malformed frame: fetch content ID is 31 bytes; it must be
// exactly 32". So do the errors of ParseManifest, Validate and CheckPath,
// which name the entry (numbered from 0, as in Request.entry) and quote
// received names with Go escapes, for example
// `protocols: invalid manifest: entry 2: path "a/../x" name ".." refers to a directory itself or its parent`.
//
// # Rooms
//
// A room is a GossipSub topic that its members subscribe to; a message is
// one pubsub message on it, forwarded by any member to any other, so no
// secure channel protects it end to end. RoomMessage, EncodeRoomPayload,
// DecodeRoomPayload, DeriveRoomKey, RoomKey.Seal, RoomKey.Open, RoomTopic
// and RoomRendezvous implement this section; package chat runs the rooms.
//
// Authors. Every pubsub message is signed by its author (GossipSub's
// StrictSign policy: from, seqno and signature present and valid, or the
// message is dropped). The author of a room message is the signer,
// msg.GetFrom(); no field of the payload names it, and a receiver never
// attributes a message to the peer that forwarded it to it.
//
// Frames. GossipSub sends each RPC as a uvarint length and that many
// bytes. A member reads RPCs of at most MaxRoomRPC (65536) bytes: on a
// longer length prefix it resets the stream before reading or allocating
// the body, drops what that stream carried (the peer's subscriptions with
// it) and keeps the connection. A writer never sends a longer RPC:
// go-libp2p-pubsub with the same limit (WithMaxMessageSize) splits
// messages and control entries over several RPCs, and one room message
// (MaxRoomPayload of payload and its signed envelope, at most
// MaxHistoryRawMessage together) fits twice. No byte layout depends on
// the limit; go-libp2p-pubsub's default is 1 MiB, which kith used before
// it set this one.
//
// Names. A room name is 1 to MaxRoomNameLen (64) bytes of lowercase ASCII
// letters a-z, digits 0-9, '-', '_' and '.', and starts with a letter or a
// digit (ValidRoomName). Names are compared byte for byte.
//
// Open and private rooms. An open room's topic is
//
//	topic = "/kith/room/1/open/" name
//
// and its payload is the encoded RoomMessage. A private room has a secret
// of MinRoomSecret (8) to MaxRoomSecret (1024) bytes that its members share;
// its key and topic are
//
//	key   = Argon2id(password = secret, salt = "kith-room-v1" || name,
//	                 time = 3, memory = 65536 KiB, threads = 4, length = 32)
//	topic = "/kith/room/1/" lowercase-hex(SHA-256("kith-room-topic" || key))
//
// so the topic tells someone without the secret neither the name nor the
// secret, and two rooms with one secret but different names have different
// keys and topics. The Argon2id parameters are RFC 9106's second
// recommended set; deriving takes about 0.4 s and 64 MiB on a 2-core
// machine, once per join. A private room's payload is sealed:
//
//	payload = nonce || XChaCha20-Poly1305-Seal(key, nonce, plaintext = the
//	          encoded RoomMessage, additional data = topic)
//	nonce   = 24 random bytes
//
// The additional data binds a payload to its topic: republished on another
// topic it does not open. A payload that does not open with the room's key
// (shorter than 40 bytes, another key, another topic, altered bytes) is
// MALFORMED.
//
// Rendezvous. Members find each other through the DHT, with no address
// given: each advertises itself as a provider of the room's namespace
//
//	namespace = "/kith/room-rendezvous/1/" lowercase-hex(first 16 bytes of
//	            SHA-256(topic))
//
// (RoomRendezvous; with go-libp2p's routing discovery the DHT key is the
// SHA-256 multihash of the namespace), renews the advertisement before it
// expires, looks up the other providers and connects to them; GossipSub
// then learns their subscriptions over those connections. Example: the
// open room "lobby" meets at
// /kith/room-rendezvous/1/06655575d7281dc9306866b2475d8866. An open room's
// namespace follows from its name, as its topic does. A private room's
// topic is already a hash of its key, so its namespace reveals nothing
// more: without the secret one learns neither the name nor the secret.
// What the DHT does show is who advertises: anyone who knows a topic (a
// peer we are connected to sees the topics we subscribe to) can look up the
// peer IDs of its members, though not read what they say. An advertisement
// cannot be withdrawn: a member that leaves stops renewing it, and DHT
// servers drop it when it expires. A member asks for a lifetime of 3 hours
// and renews its advertisement after 7/8 of it (±10%, so at most 2 h 53 min
// apart); a kith DHT server keeps a record 6 hours after it was last sent
// (twice the lifetime; go-libp2p-kad-dht's default is 48 hours) and deletes
// expired records every 15 minutes. Until then a lookup may still name a
// peer that left. A server holds at most 256 records of one providing peer
// and 32768 in all, in each half of the dual DHT (WAN, LAN): it ignores an
// ADD_PROVIDER that would make a new record past either (a renewal always
// passes), without telling the sender. A kith server
// forgets such a peer's addresses minutes after it left, and kith dials
// only the members a lookup (or its own peerstore) gives an address of.
//
// The message (the schema is internal/pb/room.proto):
//
//	message RoomMessage {
//	  uint32 version = 1;  // 2 (1 is read, section "Order and clocks")
//	  string room    = 2;  // the room's name
//	  uint64 seq     = 3;  // the author's sequence number, 1 to 2^63-1
//	  int64  sent_at = 4;  // Unix milliseconds, > 0; shown, orders nothing
//	  string text    = 5;  // UTF-8, at most 16384 bytes
//	  int64  clock   = 6;  // the order key: sent_at to MaxRoomClock
//	}
//
// A reader applies these rules, in this order where it matters:
//
//   - A payload longer than MaxRoomPayload (20480) bytes, sealed or not, is
//     TOO_LARGE, before anything of it is opened or decoded.
//   - Wire types and unknown fields as in a DM frame: a known field of
//     another wire type is MALFORMED; unknown fields are ignored.
//   - version is checked before the other fields: 2, or 1 (a message
//     written before clocks, read as below); any other value, including 0
//     (absent), is UNSUPPORTED_VERSION.
//   - room is the name of the room whose topic the message came on, in open
//     and private rooms alike (in a private room it is sealed, so only
//     members see it); any other value is MALFORMED.
//   - seq is 1 to 2^63-1 (MaxRoomSeq, so that stores with signed 64-bit
//     integers hold every seq). An author numbers its messages in each room 1, 2,
//     3, ... with no gaps and never reuses a number, even after a restart;
//     a receiver keeps each (room, author, seq) once, so a message it holds
//     is a replay and is dropped. A seq more than one above the highest it
//     holds from that author marks the numbers between as missing (a gap).
//   - sent_at is above 0. It is the author's clock when it wrote the
//     message, shown to users; it orders nothing and is compared with no
//     receiver's clock, but it is at most clock (below), so never past
//     year 9999.
//   - clock is sent_at to MaxRoomClock (253402300799999,
//     9999-12-31T23:59:59.999Z, the last instant RFC 3339 and JSON
//     write); otherwise, absent (0) included, MALFORMED. In version 1 there
//     is no clock: the reader takes it to be sent_at, whatever field 6
//     holds. A message whose clock is more than MaxRoomClockLead (6 days)
//     ahead of the receiver's clock (RoomMessage.CheckTime) is dropped, and
//     is not malformed: see "Order and clocks".
//   - text is valid UTF-8 of at most MaxRoomText (16384) bytes (longer is
//     TOO_LARGE), possibly empty; a user interface neutralises control
//     characters before it shows it.
//
// A writer encodes deterministically (fields in number order, zero values
// left out), writes version 2, and never writes what a reader refuses.
//
// Order and clocks. Every member shows a room's messages in one order,
// RoomOrder in package chat: by clock, then author (the bytes of its peer
// ID), then seq; every member holding the same messages shows them in the
// same order, since all three are signed by the author. clock is a hybrid
// logical clock in Unix milliseconds. An author stamps (NextRoomClock)
//
//	clock = max(now, prev + 1, followed + 1, F if held > F)
//	F     = now + MaxRoomClockFollow
//
// at most MaxRoomClock, where now is its own clock, prev the clock of its
// previous message in the room (0 for none; kept across restarts, so an
// author's clocks never go back and its messages are in seq order in room
// order, whatever its clock does), held the highest clock of the messages
// it holds in the room and followed the highest of those that is at most
// F (0 for none). MaxRoomClockFollow is 3 days: an author follows what it
// holds up to 3 days ahead of its clock, and goes no further than that
// for what it holds further ahead. So:
//
//   - with every member's clock right, clock is the time of writing (plus
//     a millisecond per message already held at that millisecond), and
//     messages written apart (members cut off from each other) interleave
//     by time when they meet;
//   - a reply is ordered after every message its author held, even when
//     the replier's clock is behind the author of those, by up to
//     MaxRoomClockFollow;
//   - an author whose clock runs fast (an hour, a day) is heard (below) and
//     its messages do not stay at the end of the room: what others write
//     after reading them is stamped after them. The room's clocks then run
//     that far ahead of true time until the wall clocks catch up; a message
//     written meanwhile by a member that had not received them (cut off,
//     or at the same moment) is ordered before them.
//
// A receiver drops a message whose clock is more than MaxRoomClockLead (6
// days, twice MaxRoomClockFollow) ahead of its own clock, without penalty:
// the clock may be an honest colleague's set wrong, and a member whose
// clock is ahead of ours may rightly have taken and forwarded it (kith:
// ValidationIgnore; history drops it without counting it against the
// member that answered). The bound depends on the receiver's clock alone,
// not on what it holds, so a member that joins holding nothing applies the
// same one, and no chain of messages, each a little ahead of the last, can
// move it. An author is heard by a member whose clock is up to
// MaxRoomClockLead behind its own, and still up to MaxRoomClockLead -
// MaxRoomClockFollow (3 days) behind when the author follows a room clock
// that a hostile author pushed MaxRoomClockFollow ahead of its own.
//
// A hostile author can do this to the order, and no more: place its own
// messages anywhere from 1 to MaxRoomClockLead ahead of a receiver's clock
// (and its own messages out of seq order). Stamped far ahead, they stay at
// the end of the room for at most MaxRoomClockLead: honest authors go only
// MaxRoomClockFollow ahead of their own clocks for them, so honest clocks
// run at most that far ahead of their authors' clocks because of it and
// keep their order among themselves, except that a reply written meanwhile
// by an author whose clock is behind the replied-to author's may be
// ordered before what it answers, by up to the difference of their
// clocks. No clock held is more than MaxRoomClockLead ahead of its
// holder's clock, clocks and sent_at are at most MaxRoomClock, far below
// 2^63, and no arithmetic on them overflows. (Before clocks, version 1
// ordered by sent_at and dropped a message stamped more than 5 minutes
// ahead, so that no author could pin its messages to the end of the room;
// an author whose clock ran an hour fast was then not heard at all.)
//
// Versions. The topic's "1" names the topic scheme, the sealing and the
// payload format (a protobuf RoomMessage whose unknown fields are
// ignored): a change to any of them is a new topic prefix.
// RoomMessage.version names the meaning of the message. Version 2 orders
// by clock and bounds clock, not sent_at: a version 1 reader, ignoring
// field 6, would order its messages by sent_at and drop an author's whose
// clock runs more than 5 minutes fast, so clock is a field a reader must
// understand, and needs the new version. A reader reads version 1 still:
// messages written before clocks are handed on by history for good, and
// keep the place they had (clock = sent_at, which is also the clock a
// store migrated from before clocks gives the messages it held). A kith
// that reads only version 1 rejects version 2 messages, and scores down
// the members that forward them: the members of a room upgrade together.
//
// Example: the open room "lobby", seq 1, sent at 2026-01-01T00:00:00Z with
// nothing held ahead of that, text "hi", 29 bytes on topic
// /kith/room/1/open/lobby:
//
//	08 02                  field 1 (version): 2
//	12 05 6c 6f 62 62 79   field 2 (room): "lobby"
//	18 01                  field 3 (seq): 1
//	20 80 d0 ea b6 b7 33   field 4 (sent_at): 1767225600000
//	2a 02 68 69            field 5 (text): "hi"
//	30 80 d0 ea b6 b7 33   field 6 (clock): 1767225600000
//
// The same message in version 1 had neither the clock nor its 7 bytes
// (open-v1.hex).
//
// Golden vectors are in testdata/rooms: each NAME.hex is one payload in hex
// and NAME.json its decoded fields (clock: as a reader takes it) and topic;
// sealed.json also holds the secret and the key, and sealed.hex was sealed
// with a nonce of 24 bytes 0x42. open-v1 is a version 1 message.
// rendezvous.json gives each vector's topic and namespace.
//
// Every error DecodeRoomPayload returns wraps ErrFrameTooLarge, ErrMalformed
// or ErrUnsupportedVersion and says what is wrong, for example
// "protocols: malformed frame: room message seq is 0; it must be 1 to 9223372036854775807".
//
// # Room history
//
// A member that joins a room, comes back to it (kith: at every start, and
// when a peer joins the topic after its last peer left), or sees a gap in an
// author's seqs (section "Rooms") asks another member for the messages it
// lacks on a stream of HistoryProtocol ("/kith/history/1.0.0"). Messages a
// member wrote while cut off from the others reach them only this way, and
// no gap shows them until it writes again, so members ask it in turn (kith:
// a peer that joins the topic again after leaving it, and a requester whose
// haves name seqs the server lacks, are asked once the exchange is over,
// whatever the others answer, and again with back-off until they answer in
// full; node/natlab TestF3PartitionThenHeal). The answer
// carries the signed pubsub messages exactly as the topic carried them, so
// the requester verifies each as if it had come by gossip and trusts the
// server for nothing but availability. HistoryRequest, HistoryReader and
// HistoryWriter implement this section; package chat runs the exchange.
//
// Framing. Frames are framed as direct messages are (section "Direct
// messages", Framing): a minimal uvarint length, then a protobuf
// kith.history.v1.HistoryFrame (the schema is internal/pb/history.proto) of
// that many bytes. The server reads the request with the limit
// MaxHistoryRequest (98304: every request the rules below allow fits); the
// requester reads the answer with the limit MaxHistoryFrame (1048576). A
// larger length is TOO_LARGE, before anything is allocated for the body.
//
//	message HistoryFrame {
//	  oneof part {
//	    HistoryRequest request = 1;
//	    HistoryBatch   batch   = 2;
//	    HistoryEnd     end     = 3;
//	    HistoryError   error   = 4;  // as DM's Error, codes 1 to 8
//	  }
//	}
//	message HistoryRequest {
//	  uint32 version               = 1;  // must be 1
//	  string topic                 = 2;  // the room's topic
//	  repeated HistoryHave have    = 3;  // 0 to 1024, one per author at most
//	  uint32 max_messages          = 4;  // 1 to 2000
//	  uint64 since                 = 5;  // 0, or the oldest clock wanted
//	  bool   latest                = 6;  // the newest lacked, not the oldest
//	}
//	message HistoryHave  {
//	  bytes author               = 1;
//	  uint64 through             = 2;
//	  repeated HistoryRange held = 3;  // 0 or more; at most 512 in a request
//	}
//	message HistoryRange { uint64 from = 1; uint64 to = 2; }
//	message HistoryBatch { repeated bytes messages = 1; }  // 1 or more
//	message HistoryEnd   { bool more = 1; }
//
// Readers and writers apply the DM rules for a frame's one part, wire types,
// unknown fields and Error frames, and these:
//
//   - HistoryRequest.version is checked before anything else in the
//     request: any value but HistoryVersion (1), including 0, is
//     UNSUPPORTED_VERSION.
//   - topic is a room topic (CheckRoomTopic): "/kith/room/1/open/" and a
//     valid room name, or "/kith/room/1/" and 64 lowercase hex digits;
//     anything else is MALFORMED.
//   - have lists at most MaxHistoryAuthors (1024) authors (more is
//     TOO_LARGE), each once (twice is MALFORMED). author is a binary peer
//     ID (a multihash, as peer.IDFromBytes reads it) of at most 64 bytes
//     (longer is TOO_LARGE, not a peer ID MALFORMED). through says that the
//     requester holds that author's seqs 1 to through, all of them (its
//     contiguous prefix; 0: none, the same as not listing the author).
//     held lists the seqs above through that the requester holds too, as
//     ranges from to to, inclusive: from at most to (else MALFORMED),
//     ascending and apart, the first from above through + 1 and each next
//     from above the previous to + 1 (else MALFORMED: through and the
//     ranges describe what is held, the gaps between them what is not).
//     A request lists at most MaxHistoryHeld (512) ranges over all its
//     authors (more is TOO_LARGE), so that the largest request, about 91
//     KiB, still fits MaxHistoryRequest. held came after the first
//     servers: one that reads no held ranges ignores field 3 (unknown
//     fields are ignored) and sends what it holds above through, held
//     ranges included, which the requester drops as duplicates; the
//     version stays 1.
//   - max_messages is 1 to MaxHistoryMessages (2000): 0 is MALFORMED, more
//     is TOO_LARGE.
//   - since, when not 0, says the requester wants no message whose clock
//     (section "Rooms", Order and clocks) is below it; latest asks for the
//     newest messages it lacks rather than the oldest. Any value of either
//     is valid. A member that joins a room takes its recent past only
//     (kith: asked with latest, round after round, until it took 500
//     messages, more is false or a round brought nothing new; a member
//     stopped before that takes it when it starts again). When the server
//     had older ones, it asks from then on with since set to the clock of
//     the oldest message it holds, so that what was said before it joined
//     is never fetched, and holes before it are not gaps; otherwise it
//     holds the room's whole history and sets no since. Both came after
//     the first servers: one that reads neither
//     ignores fields 5 and 6 and answers as for a request without them
//     (the oldest it holds that the requester lacks); a requester drops
//     what is below its since. The version stays 1.
//   - A batch carries at least one message; each is 1 to
//     MaxHistoryRawMessage (24576) bytes: MaxRoomPayload and 4096 bytes for
//     the envelope (from, seqno, topic, signature, and a key for the
//     identities whose peer ID does not hold it). Empty is MALFORMED, longer
//     TOO_LARGE. The framing does not look inside a message.
//
// The exchange:
//
//  1. The requester opens a stream, writes one HistoryRequest and closes its
//     write side.
//  2. The server answers with an Error and closes, or with zero or more
//     HistoryBatch frames and then one HistoryEnd, and closes. The batches
//     hold, in room order (RoomOrder in package chat: by clock, author,
//     seq), the first messages it holds on topic that the requester lacks
//     (the last ones, with latest), of those whose clock is at least since
//     (every one, when since is 0): lacked are those whose seq is above the
//     requester's through for their author and in none of its held ranges,
//     and every message of an author the request does not list;
//     max_messages of them, or fewer when the
//     server caps its answers (kith: 128, which it holds in memory at
//     once). HistoryEnd.more says it stopped at that count with more to
//     send; the requester asks again with its new haves, and stops when
//     more is false, when a round brought nothing new (the server may hold
//     nothing past the requester's gaps, or read no held ranges and send
//     what the requester holds), or after a number of rounds
//     (kith: 50 with one member, then again a minute later: anyone may
//     sign new messages for an open room, so a server could always have
//     more).
//
// Only the requester writes a request, only the server the other frames; a
// server answers any first frame but a request with UNEXPECTED. A requester
// that reads a request, more messages than it asked for, or the end of the
// stream before HistoryEnd, resets the stream and asks another member (kith
// does not ask a server that sent a request or too many messages again for
// a while, as below).
//
// Who may ask. A server answers only for a room it is a member of, and only
// a peer that its GossipSub router shows subscribed to that room's topic at
// that moment; anything else is NOT_ALLOWED, the same answer for a room the
// server is not in as for a requester that is not subscribed (the answer
// does not tell which rooms the server is in). That is enough, because
// history hands on nothing the topic did not carry to every subscriber: in
// an open room anyone may subscribe; a private room's topic is a hash of
// its key, so only its members (and whoever watched the topic) know what
// to ask for, and its payloads are sealed with the key, so a subscriber
// without the secret reads none of them. Members ask a member that forwarded
// a message with a gap before it, else any member, up to three in turn
// (kith: a member that answered in full but left gaps is followed by the
// next; while rounds still repair something they are repeated with the
// back-off below; a gap no member could narrow waits for the next gap seen
// or the next member to join).
//
// Verification. The requester checks every message of a batch as the topic
// would have, and drops one that fails:
//
//   - it decodes as a pubsub Message (go-libp2p-pubsub's pb.Message) whose
//     topic is the room's topic;
//   - it carries from, seqno and signature, and the signature is valid
//     under StrictSign: over "libp2p-pubsub:" followed by the message
//     encoded without its signature and key fields, with the public key in
//     key (which must match from) or, without one, extracted from from;
//   - its data is a payload of the room (section "Rooms": it opens with the
//     room's key in a private room, names the room, and decodes by every
//     rule there), and its clock is not more than MaxRoomClockLead ahead
//     of the requester's clock.
//
// The author is from, the signer. A message passing these checks is kept as
// gossip's are: once per (room, author, seq), with the bytes received as
// its signed form, so that it can be handed on in turn; a duplicate is
// dropped. A requester cuts off a server that sent several messages that
// fail (kith: 3 in one answer), by resetting the stream, asks another
// member, and does not ask that server again for a while (kith: 10
// minutes). A message that fails only because its clock is too far ahead
// is dropped but does not count: a server whose clock is ahead of the
// requester's rightly took it.
//
// Error codes: MALFORMED, TOO_LARGE and UNSUPPORTED_VERSION for a request
// that breaks a rule above (ErrorCodeFor; after a TOO_LARGE length, without
// reading the body); NOT_ALLOWED as above; INTERNAL when the server fails
// (its store), after which the requester asks another member; UNEXPECTED.
// A requester that gets an Error asks another member, and asks again later
// (kith: after 1 s, doubling up to 1 minute, or at once when a new peer
// joins the topic; a server may refuse a new member until its router has
// seen the subscription, so a round in which every member asked answered
// NOT_ALLOWED is repeated every second, up to 30 times in a row, before
// the back-off doubles).
//
// A requester that a member keeps refusing with NOT_ALLOWED although its
// own router lists that member in the topic announces its subscription
// again: it unsubscribes from the topic and subscribes again at once, so
// that its router sends every peer a GossipSub unsubscribe and then a
// subscribe (ordinary GossipSub messages; nothing new on the wire). A
// router may have forgotten the subscription for good: go-libp2p-pubsub
// v0.17 forgets a peer's subscriptions when it handles the death of its
// stream to the peer, and learns them only from the hello of a new stream
// or an announcement, so when a member comes back on a new connection and
// the router reads its hello before it handles the old connection's death
// (as a loaded machine may), the member stays unknown to it, unserved and
// not forwarded to, until the next reconnect. (kith: after 3 s of
// refusals from one member with no answer between, at most once a minute
// per room, and once per refusing member while it stays in the topic;
// chat TestRoomReconnectRace.) The other members see the requester leave
// the topic and join it again, and may ask it for history as a member
// back (above).
//
// Versions. The protocol ID names the framing, the frames and the exchange;
// a change to any of them is a new protocol ID (/kith/history/2.0.0).
// HistoryRequest.version names the meaning of a request; only version 1
// exists. The messages carried are the topic's, versioned by section
// "Rooms".
//
// Timeouts are not part of the wire format, but implementations bound every
// read and write with a deadline (kith: 30 s for the first frame, 60 s for
// each later one, 5 minutes for the whole exchange) and reset a stream whose
// peer stalls longer.
//
// Limits, in one place:
//
//	MaxHistoryRequest     98304    bytes of a frame before the request is read
//	MaxHistoryFrame       1048576  bytes of any frame (a batch is cut to fit)
//	MaxHistoryAuthors     1024     authors of a request
//	MaxHistoryHeld        512      held ranges of a request, over its authors
//	MaxHistoryMessages    2000     messages asked for in one request (a
//	                               server may send fewer and say more)
//	MaxHistoryRawMessage  24576    bytes of one signed message in a batch
//	MaxHistoryAuthorLen   64       bytes of an author's peer ID
//
// Example: the end of an answer that stopped at max_messages, 5 bytes in
// all,
//
//	04                     length 4
//	1a 02                  field 3 (end), 2 bytes
//	08 01                  field 1 (more): true
//
// Golden vectors are in testdata/history: each NAME.hex is one frame,
// length prefix included, in hex, and NAME.json its decoded fields (a
// batch's messages in hex; the golden batch holds short stand-ins, not
// signed messages, since the framing does not look inside them).
//
// Every error HistoryReader.Read returns about a frame wraps
// ErrFrameTooLarge, ErrMalformed or ErrUnsupportedVersion and says what is
// wrong, for example "protocols: malformed frame: request have 0: author is
// not a peer ID".
//
// # Clocks
//
// Peers' clocks disagree, by an hour (a time zone set wrong) or a day. Here
// is every place a peer's clock reaches another peer, and what the other
// does with it; a clock off by an hour or a day loses nothing except where
// this says so.
//
//   - Direct messages: sent_at is the sender's clock, shown to the user and
//     compared with nothing. A receiver keeps a sender's messages in the
//     order they arrive, which is the order sent (a sender delivers its
//     outbox oldest first, one delivery to a peer at a time), never in
//     sent_at order; it refuses no message for its sent_at; and it keeps
//     each id of a sender once, for good, so a replay is acked and dropped
//     however old it is: there is no replay window for a clock to open.
//   - File transfer: no frame carries a time. An offer waits for the
//     receiver's answer until its user answers or the sender cancels it, and
//     a shared ticket's transfer is served until it completes or is
//     cancelled: neither expires, so no clock decides whether an offer is
//     held or a fetch served. A receiver's per-peer offer rate (kith: 16 at
//     once, then 2 a second) runs on its own clock, and a receiver whose
//     clock goes back does not lock a peer out for it.
//   - Tickets carry no time.
//   - Rooms: sent_at is the author's clock, shown to users and compared
//     with nothing. The room's order comes from clock, a hybrid logical
//     clock the author stamps: at least its own clock, after its previous
//     message's (even after a restart with its clock set back), and after
//     every message it holds unless that is more than 3 days ahead of it
//     (section "Rooms", Order and clocks). A receiver drops, without
//     penalty, a message whose clock is more than 6 days ahead of its own
//     clock. So an author an hour or a day ahead of the others, or behind
//     them, is heard by every member; a reply is ordered after what it
//     answers whichever clock is behind; and a fast author's messages are
//     followed, not left at the end of the room. Room messages carry no
//     replay window: a receiver keeps each (room, author, seq) once, for
//     good.
//   - Below these protocols, QUIC's TLS 1.3 handshake checks each peer's
//     self-signed certificate against the other's clock. go-libp2p dates a
//     certificate from its clock minus one hour, so peers whose clocks differ
//     by more than an hour could not connect over QUIC (TCP with Noise
//     carries no time). kith dates its certificates from 2020-01-01 and for
//     100 years after its start, so two kith peers connect over QUIC whatever
//     their clocks say within that span. A kith peer more than an hour
//     behind a peer of another implementation still refuses that peer's
//     certificate.
//   - Relay reservations (circuit relay v2, go-libp2p's wire format, not
//     kith's): a reservation states its expiry as an absolute UNIX time on
//     the relay's clock, and the relay forgets it at that time by its own
//     clock. go-libp2p's client refuses a reservation whose expiry is before
//     its own clock and refreshes one two minutes before it by its own
//     clock, so a node more than a reservation's lifetime (1 hour) ahead of
//     its relay held none, and one behind refreshed late by as much, unreachable
//     through the relay meanwhile. A kith node does not compare the stated
//     expiry with its clock: it reserves again half a lifetime after each
//     grant by elapsed (monotonic) time, the lifetime being the stated expiry
//     minus its own time at receipt when that is between an eighth of an
//     hour and an hour, else an hour (every kith relay grants an hour), and
//     keeps and advertises what the relay granted even when go-libp2p
//     refused it. So a node off from its relay by any amount stays reachable
//     through it.
package protocols
