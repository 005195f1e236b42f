package protocols

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TicketPrefix starts every ticket string. Parsing accepts it in any case.
const TicketPrefix = "kith1"

// ErrTicket is wrapped by every error ParseTicket returns.
var ErrTicket = errors.New("protocols: invalid ticket")

// Ticket names a peer and how to reach it; file tickets also carry a content
// ID and a secret. The byte layout is specified in the package documentation
// (section "Tickets").
type Ticket struct {
	// Peer is the peer the ticket names. Required; must be an Ed25519 peer ID.
	Peer peer.ID
	// Addrs are addresses Peer may be reached at (hints; may be empty). An
	// address must not end in /p2p/ of another peer; a trailing /p2p/<Peer> is
	// left out when encoding. A relay address
	// (.../p2p/<relay>/p2p-circuit) is allowed.
	Addrs []ma.Multiaddr
	// Content is an optional content ID (file transfer), at most 64 bytes.
	Content []byte
	// Secret is optional; when present it is 16 to 64 bytes.
	Secret []byte
}

// MaxTicketAddrs is the most addresses a ticket may carry.
const MaxTicketAddrs = 16

// Ticket format constants (see the package documentation).
const (
	ticketVersion = 1

	fieldPeer    = 1
	fieldAddr    = 2
	fieldContent = 3
	fieldSecret  = 4

	maxTicketLen     = 4096 // characters of the whole ticket string
	maxTicketAddrLen = 512  // bytes of one binary multiaddr
	maxContentLen    = 64
	minSecretLen     = 16
	maxSecretLen     = 64
)

// String encodes t in its canonical text form, TicketPrefix followed by
// lowercase unpadded base32. Empty addresses (also those that were only
// /p2p/<Peer>) and empty Content or Secret are left out.
//
// String does not validate: a Ticket that breaks a rule of the format (for
// example more than 16 addresses, or so many that the string exceeds 4096
// characters) encodes to a string that ParseTicket rejects. To check a ticket
// before showing it, parse the result of String.
func (t Ticket) String() string {
	b := []byte{ticketVersion}
	b = appendField(b, fieldPeer, []byte(t.Peer))
	for _, a := range t.Addrs {
		if ab := stripOwnP2P(a, t.Peer).Bytes(); len(ab) > 0 {
			b = appendField(b, fieldAddr, ab)
		}
	}
	if len(t.Content) > 0 {
		b = appendField(b, fieldContent, t.Content)
	}
	if len(t.Secret) > 0 {
		b = appendField(b, fieldSecret, t.Secret)
	}
	return TicketPrefix + strings.ToLower(ticketBase32().EncodeToString(b))
}

// AddrInfo returns the peer and its addresses, ready for host.Connect.
func (t Ticket) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: t.Peer, Addrs: slices.Clone(t.Addrs)}
}

// appendField appends one TLV field: uvarint type, uvarint length, value.
func appendField(b []byte, typ uint64, val []byte) []byte {
	b = binary.AppendUvarint(b, typ)
	b = binary.AppendUvarint(b, uint64(len(val)))
	return append(b, val...)
}

// stripOwnP2P removes a trailing /p2p/<p> component from a.
func stripOwnP2P(a ma.Multiaddr, p peer.ID) ma.Multiaddr {
	rest, last := ma.SplitLast(a)
	if last != nil && last.Code() == ma.P_P2P && peer.ID(last.RawValue()) == p {
		return rest
	}
	return a
}

// ticketBase32 is RFC 4648 base32 without padding. It uses the standard
// (uppercase) alphabet: String lowercases its output, ParseTicket uppercases
// its input.
func ticketBase32() *base32.Encoding {
	return base32.StdEncoding.WithPadding(base32.NoPadding)
}
