package protocols

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseTicket decodes and validates a ticket string. Surrounding whitespace is
// ignored and the string is case-insensitive. Every error wraps ErrTicket and
// says what is wrong. A ticket ParseTicket accepts re-encodes (with
// Ticket.String) to the same string, trimmed and lowercased.
func ParseTicket(s string) (Ticket, error) {
	payload, err := decodeTicketText(s)
	if err != nil {
		return Ticket{}, err
	}
	return decodeTicketPayload(payload)
}

// decodeTicketText checks the text form and returns the binary payload.
func decodeTicketText(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty", ErrTicket)
	case len(s) > maxTicketLen:
		return nil, fmt.Errorf("%w: %d characters long, more than the %d allowed",
			ErrTicket, len(s), maxTicketLen)
	case len(s) < len(TicketPrefix) || !strings.EqualFold(s[:len(TicketPrefix)], TicketPrefix):
		return nil, fmt.Errorf("%w: does not start with %q", ErrTicket, TicketPrefix)
	}
	body, pos := s[len(TicketPrefix):], len(TicketPrefix)
	for _, r := range body {
		pos++
		// Check before case folding: strings.ToUpper maps non-ASCII
		// lookalikes such as 'ı' and 'ſ' to 'I' and 'S'.
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return nil, fmt.Errorf("%w: character %q at position %d is not base32 (a-z, 2-7)",
				ErrTicket, r, pos)
		}
	}
	body = strings.ToUpper(body) // ASCII only by now
	if r := len(body) % 8; r == 1 || r == 3 || r == 6 {
		return nil, fmt.Errorf("%w: base32 text of %d characters is impossible (truncated or mistyped?)",
			ErrTicket, len(body))
	}
	enc := ticketBase32()
	payload, err := enc.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base32 (truncated or mistyped?): %w", ErrTicket, err)
	}
	if enc.EncodeToString(payload) != body {
		return nil, fmt.Errorf("%w: non-canonical base32 (unused bits of the last character are not zero)", ErrTicket)
	}
	return payload, nil
}

// decodeTicketPayload parses the version byte and the TLV fields.
func decodeTicketPayload(b []byte) (Ticket, error) {
	if len(b) == 0 {
		return Ticket{}, fmt.Errorf("%w: no data after %q", ErrTicket, TicketPrefix)
	}
	if v := b[0]; v != ticketVersion {
		return Ticket{}, fmt.Errorf("%w: %s", ErrTicket, versionProblem(v))
	}
	var tb ticketBuilder
	for rest, n := b[1:], 1; len(rest) > 0; n++ {
		typ, val, tail, err := readField(rest)
		if err != nil {
			return Ticket{}, fmt.Errorf("%w: field %d: %w", ErrTicket, n, err)
		}
		if err := tb.add(n, typ, val); err != nil {
			return Ticket{}, fmt.Errorf("%w: %w", ErrTicket, err)
		}
		rest = tail
	}
	if tb.t.Peer == "" {
		return Ticket{}, fmt.Errorf("%w: missing peer ID", ErrTicket)
	}
	return tb.t, nil
}

func versionProblem(v byte) string {
	if v > ticketVersion {
		return fmt.Sprintf("unsupported ticket version %d: it was made by a newer kith; upgrade to use it", v)
	}
	return fmt.Sprintf("unsupported ticket version %d", v)
}

// readField reads one TLV field from b and returns the rest of b after it.
func readField(b []byte) (typ uint64, val, rest []byte, err error) {
	typ, n, err := readUvarint(b)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("type: %w", err)
	}
	b = b[n:]
	length, n, err := readUvarint(b)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("length: %w", err)
	}
	b = b[n:]
	if length > uint64(len(b)) {
		return 0, nil, nil, fmt.Errorf("length %d is more than the %d bytes remaining (truncated ticket?)",
			length, len(b))
	}
	return typ, b[:length], b[length:], nil
}

// readUvarint reads a minimal unsigned LEB128 varint of at most 64 bits.
func readUvarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, fmt.Errorf("varint cut off (truncated ticket?)")
	case n < 0:
		return 0, 0, fmt.Errorf("varint overflows 64 bits")
	case n > 1 && b[n-1] == 0:
		return 0, 0, fmt.Errorf("overlong varint")
	}
	return v, n, nil
}

// ticketBuilder checks field order and values while it fills in a Ticket.
type ticketBuilder struct {
	t    Ticket
	last uint64 // type of the previous field, 0 before the first
}

// add checks field number n (1-based) of type typ and stores its value.
func (tb *ticketBuilder) add(n int, typ uint64, val []byte) error {
	if typ < fieldPeer || typ > fieldSecret {
		return fmt.Errorf("field %d: unknown field type %d", n, typ)
	}
	switch {
	case tb.last == 0 && typ != fieldPeer:
		return fmt.Errorf("field %d: the peer ID must come first, not the %s", n, fieldName(typ))
	case typ == tb.last && typ != fieldAddr:
		return fmt.Errorf("field %d: %s appears twice", n, fieldName(typ))
	case typ < tb.last:
		return fmt.Errorf("field %d: %s after %s: fields must be in type order", n,
			fieldName(typ), fieldName(tb.last))
	}
	tb.last = typ
	switch typ {
	case fieldPeer:
		return tb.setPeer(val)
	case fieldAddr:
		return tb.addAddr(val)
	case fieldContent:
		return tb.setContent(val)
	default:
		return tb.setSecret(val)
	}
}

func fieldName(typ uint64) string {
	switch typ {
	case fieldPeer:
		return "peer ID"
	case fieldAddr:
		return "address"
	case fieldContent:
		return "content ID"
	default:
		return "secret"
	}
}

func (tb *ticketBuilder) setPeer(val []byte) error {
	if len(val) == 0 {
		return fmt.Errorf("peer ID is empty")
	}
	id, err := peer.IDFromBytes(val)
	if err != nil {
		return fmt.Errorf("peer ID: %w", err)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("peer ID is not an Ed25519 key: %w", err)
	}
	if pk.Type() != crypto.Ed25519 {
		return fmt.Errorf("peer ID is not an Ed25519 key (it is %v)", pk.Type())
	}
	if canon, err := peer.IDFromPublicKey(pk); err != nil || canon != id {
		return fmt.Errorf("peer ID is not in canonical form")
	}
	tb.t.Peer = id
	return nil
}

func (tb *ticketBuilder) addAddr(val []byte) error {
	i := len(tb.t.Addrs) + 1
	switch {
	case i > MaxTicketAddrs:
		return fmt.Errorf("more than %d addresses", MaxTicketAddrs)
	case len(val) == 0:
		return fmt.Errorf("address %d: empty", i)
	case len(val) > maxTicketAddrLen:
		return fmt.Errorf("address %d: %d bytes, more than the %d allowed", i, len(val), maxTicketAddrLen)
	}
	a, err := ma.NewMultiaddrBytes(val)
	if err != nil {
		return fmt.Errorf("address %d: %w", i, err)
	}
	if err := checkP2P(a, tb.t.Peer); err != nil {
		return fmt.Errorf("address %d: %w", i, err)
	}
	tb.t.Addrs = append(tb.t.Addrs, a)
	return nil
}

// checkP2P allows a /p2p/ component only as a relay hop (followed by
// /p2p-circuit). A trailing /p2p/ names the peer the address leads to: another
// peer is an error, and self is not canonical (String leaves it out).
func checkP2P(a ma.Multiaddr, self peer.ID) error {
	for i, c := range a {
		if c.Code() != ma.P_P2P {
			continue
		}
		id := peer.ID(c.RawValue())
		switch {
		case i+1 < len(a) && a[i+1].Code() == ma.P_CIRCUIT:
			continue
		case i+1 < len(a):
			return fmt.Errorf("/p2p/%s is not followed by /p2p-circuit", id)
		case id == self:
			return fmt.Errorf("ends in /p2p/ of the ticket's own peer (not canonical: leave it out)")
		default:
			return fmt.Errorf("belongs to another peer (/p2p/%s)", id)
		}
	}
	return nil
}

func (tb *ticketBuilder) setContent(val []byte) error {
	if len(val) == 0 || len(val) > maxContentLen {
		return fmt.Errorf("content ID is %d bytes; it must be 1 to %d", len(val), maxContentLen)
	}
	tb.t.Content = bytes.Clone(val)
	return nil
}

func (tb *ticketBuilder) setSecret(val []byte) error {
	if len(val) < minSecretLen || len(val) > maxSecretLen {
		return fmt.Errorf("secret is %d bytes; it must be %d to %d", len(val), minSecretLen, maxSecretLen)
	}
	tb.t.Secret = bytes.Clone(val)
	return nil
}
