package protocols

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// testPeer returns the Ed25519 peer ID whose 32-byte seed is seed repeated.
func testPeer(tb testing.TB, seed byte) peer.ID {
	tb.Helper()
	_, pub, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// secp256k1Peer returns a deterministic secp256k1 peer ID.
func secp256k1Peer(tb testing.TB) peer.ID {
	tb.Helper()
	priv, err := crypto.UnmarshalSecp256k1PrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// rsaPeer is a well-known RSA peer ID (a hashed, Qm... ID).
func rsaPeer(tb testing.TB) peer.ID {
	tb.Helper()
	id, err := peer.Decode("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN")
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustAddr(tb testing.TB, s string) ma.Multiaddr {
	tb.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// rawTicket wraps a hand-made payload in the text form, without validation.
func rawTicket(payload []byte) string {
	return TicketPrefix + strings.ToLower(ticketBase32().EncodeToString(payload))
}

// payload builds version byte v followed by fields given as (type, value).
func payload(v byte, fields ...field) []byte {
	b := []byte{v}
	for _, f := range fields {
		b = appendField(b, f.typ, f.val)
	}
	return b
}

type field struct {
	typ uint64
	val []byte
}

func peerField(id peer.ID) field          { return field{fieldPeer, []byte(id)} }
func addrField(a ma.Multiaddr) field      { return field{fieldAddr, a.Bytes()} }
func uvarint(v uint64) []byte             { return binary.AppendUvarint(nil, v) }
func repeat(b byte, n int) []byte         { return bytes.Repeat([]byte{b}, n) }
func withTail(p []byte, t ...byte) []byte { return append(bytes.Clone(p), t...) }

// ticketsEqual compares tickets field by field (nil and empty are equal).
func ticketsEqual(a, b Ticket) bool {
	if a.Peer != b.Peer || len(a.Addrs) != len(b.Addrs) ||
		!bytes.Equal(a.Content, b.Content) || !bytes.Equal(a.Secret, b.Secret) {
		return false
	}
	for i := range a.Addrs {
		if !a.Addrs[i].Equal(b.Addrs[i]) {
			return false
		}
	}
	return true
}

type hostileTicket struct {
	name  string
	input string
	want  string // substring of the error message
}

// hostileTickets lists attacks and mistakes that ParseTicket must reject.
func hostileTickets(tb testing.TB) []hostileTicket {
	tb.Helper()
	self := testPeer(tb, 1)
	// withPeer is a version 1 ticket: the peer field of self, then fs.
	withPeer := func(fs ...field) string {
		return rawTicket(payload(1, append([]field{peerField(self)}, fs...)...))
	}
	return slices.Concat(hostileTexts(tb, self), hostileFraming(tb, self),
		hostileFields(tb, self, withPeer), hostileAddrs(tb, self, withPeer))
}

// hostileTexts attacks the text form.
func hostileTexts(tb testing.TB, self peer.ID) []hostileTicket {
	good := rawTicket(payload(1, peerField(self)))
	return []hostileTicket{
		{"empty", "", "empty"},
		{"whitespace only", " \t\n", "empty"},
		{"wrong prefix", "kith2" + good[5:], `does not start with "kith1"`},
		{"bare peer ID", self.String(), `does not start with "kith1"`},
		{"bad base32 character", good[:10] + "1" + good[11:], `character '1' at position 11`},
		{"inner whitespace", good[:10] + " " + good[10:], "is not base32"},
		{"dotless i", swapFirst(tb, good, 'i', "ı"), "character 'ı' at position"},
		{"long s", swapFirst(tb, good, 's', "ſ"), "character 'ſ' at position"},
		{"Kelvin sign in prefix", "\u212a" + good[1:], `does not start with "kith1"`},
		{"bad base32 length", TicketPrefix + "abc", "base32 text of 3 characters is impossible"},
		{"nonzero trailing bits", TicketPrefix + "ab", "non-canonical base32"},
		{"prefix only", TicketPrefix, "no data after"},
		{"5000-char string", TicketPrefix + strings.Repeat("a", 4995), "5000 characters long, more than the 4096"},
	}
}

// hostileFraming attacks the version byte, varints and TLV framing.
func hostileFraming(tb testing.TB, self peer.ID) []hostileTicket {
	good := payload(1, peerField(self))
	return []hostileTicket{
		{"truncated", rawTicket(good[:len(good)-5]), "more than the 33 bytes remaining"},
		{"truncated header", rawTicket(good[:2]), "length: varint cut off"},
		{"version only", rawTicket([]byte{1}), "missing peer ID"},
		{"huge length varint", rawTicket(withTail([]byte{1, fieldPeer}, uvarint(1<<63)...)),
			"length 9223372036854775808 is more than the 0 bytes remaining"},
		{"11-byte varint", rawTicket(withTail([]byte{1}, append(repeat(0xff, 10), 0x01)...)),
			"type: varint overflows 64 bits"},
		{"overlong varint", rawTicket(withTail([]byte{1}, 0x81, 0x00)), "type: overlong varint"},
		{"version 2", rawTicket(payload(2, peerField(self))), "unsupported ticket version 2: it was made by a newer kith"},
		{"version 0", rawTicket(payload(0, peerField(self))), "unsupported ticket version 0"},
		{"type zero", rawTicket(payload(1, field{0, nil})), "unknown field type 0"},
	}
}

// hostileFields attacks field order, counts, sizes and the peer ID.
func hostileFields(tb testing.TB, self peer.ID, withPeer func(...field) string) []hostileTicket {
	secret := field{fieldSecret, repeat(1, 16)}
	one := func(f field) string { return rawTicket(payload(1, f)) }
	return []hostileTicket{
		{"duplicate peer field", withPeer(peerField(self)), "field 2: peer ID appears twice"},
		{"peer field not first", rawTicket(payload(1, addrField(mustAddr(tb, "/ip4/192.0.2.1/tcp/1")),
			peerField(self))), "field 1: the peer ID must come first"},
		{"fields out of order", withPeer(secret, field{fieldContent, repeat(2, 8)}), "content ID after secret"},
		{"duplicate secret", withPeer(secret, secret), "field 3: secret appears twice"},
		{"unknown type", withPeer(field{9, []byte("x")}), "field 2: unknown field type 9"},
		{"secret of 8 bytes", withPeer(field{fieldSecret, repeat(1, 8)}), "secret is 8 bytes; it must be 16 to 64"},
		{"secret of 65 bytes", withPeer(field{fieldSecret, repeat(1, 65)}), "secret is 65 bytes"},
		{"content of 65 bytes", withPeer(field{fieldContent, repeat(1, 65)}), "content ID is 65 bytes"},
		{"empty content", withPeer(field{fieldContent, nil}), "content ID is 0 bytes"},
		{"RSA peer ID", one(peerField(rsaPeer(tb))), "peer ID is not an Ed25519 key"},
		{"secp256k1 peer ID", one(peerField(secp256k1Peer(tb))), "peer ID is not an Ed25519 key (it is Secp256k1)"},
		{"empty peer ID", one(field{fieldPeer, nil}), "peer ID is empty"},
		{"garbage peer ID", one(field{fieldPeer, []byte("hello")}), "peer ID:"},
		{"non-canonical peer ID", one(peerField(nonCanonicalPeer(tb, self))), "peer ID is not in canonical form"},
	}
}

// hostileAddrs attacks the address fields.
func hostileAddrs(tb testing.TB, self peer.ID, withPeer func(...field) string) []hostileTicket {
	other := testPeer(tb, 2)
	tcp := mustAddr(tb, "/ip4/192.0.2.1/tcp/4001")
	var many []field
	for range MaxTicketAddrs + 1 {
		many = append(many, addrField(tcp))
	}
	p2p := func(id peer.ID) ma.Multiaddr { return mustAddr(tb, "/p2p/"+id.String()) }
	return []hostileTicket{
		{"17 addrs", withPeer(many...), "more than 16 addresses"},
		{"oversized multiaddr", withPeer(addrField(mustAddr(tb, "/dns/"+strings.Repeat("a", 520)))),
			"address 1: 523 bytes, more than the 512 allowed"},
		{"garbage multiaddr", withPeer(field{fieldAddr, []byte{0xff, 0xff, 0x03}}), "address 1:"},
		{"empty multiaddr", withPeer(field{fieldAddr, nil}), "address 1: empty"},
		{"/p2p/ of another peer", withPeer(addrField(tcp), addrField(tcp.Encapsulate(p2p(other)))),
			"address 2: belongs to another peer (/p2p/" + other.String() + ")"},
		{"/p2p/ in the middle", withPeer(addrField(p2p(other).Encapsulate(tcp))), "is not followed by /p2p-circuit"},
		{"trailing /p2p/ of own peer", withPeer(addrField(tcp.Encapsulate(p2p(self)))), "own peer (not canonical"},
	}
}

// swapFirst replaces the first c after the prefix of ticket s with r.
func swapFirst(tb testing.TB, s string, c byte, r string) string {
	tb.Helper()
	i := strings.IndexByte(s[len(TicketPrefix):], c)
	if i < 0 {
		tb.Fatalf("no %q in %q", c, s)
	}
	i += len(TicketPrefix)
	return s[:i] + r + s[i+1:]
}

// nonCanonicalPeer re-encodes id's identity multihash with an overlong
// protobuf key-type tag, which UnmarshalPublicKey still accepts.
func nonCanonicalPeer(tb testing.TB, id peer.ID) peer.ID {
	tb.Helper()
	// identity multihash: 0x00, length, then the protobuf PublicKey
	// (08 01 = KeyType Ed25519, 12 20 = Data, 32 bytes).
	b := []byte(id)
	if b[0] != 0 || b[1] != 36 || b[2] != 0x08 {
		tb.Fatalf("unexpected peer ID layout %x", b)
	}
	pb := append([]byte{0x08, 0x81, 0x00}, b[4:]...) // KeyType 1 as overlong varint
	return peer.ID(append([]byte{0, byte(len(pb))}, pb...))
}
