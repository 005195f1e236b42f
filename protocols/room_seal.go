package protocols

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Room topics, key derivation and sealing (section "Rooms").
const (
	// RoomTopicPrefix starts every room's GossipSub topic.
	RoomTopicPrefix = "/kith/room/1/"
	// OpenRoomTopicPrefix starts an open room's topic; its name follows.
	OpenRoomTopicPrefix = RoomTopicPrefix + "open/"
	// MinRoomSecret and MaxRoomSecret bound a private room's secret.
	MinRoomSecret, MaxRoomSecret = 8, 1024
	// RoomKeySize is the size of a private room's key.
	RoomKeySize = chacha20poly1305.KeySize

	roomNonceSize = chacha20poly1305.NonceSizeX
	roomSealOver  = roomNonceSize + chacha20poly1305.Overhead

	// The Argon2id parameters of DeriveRoomKey; part of the wire format.
	roomArgonTime    = 3
	roomArgonMemory  = 64 << 10 // KiB: 64 MiB
	roomArgonThreads = 4
	roomKeySalt      = "kith-room-v1"
	roomTopicContext = "kith-room-topic"
)

// ErrRoomSeal: a sealed payload that does not open with the room's key
// (another key, another topic, or altered bytes).
var ErrRoomSeal = errors.New("protocols: room payload does not open with this room's key")

// RoomKey is a private room's 32-byte key. It is a secret: its String and
// GoString never show it; only Bytes does, for a store.
type RoomKey struct{ k [RoomKeySize]byte }

// DeriveRoomKey derives the key of the private room name from its secret:
// Argon2id(secret, salt "kith-room-v1" || name, t=3, m=64 MiB, p=4, 32
// bytes). It takes about 0.4 s and 64 MiB of memory on a 2-core machine
// (BenchmarkDeriveRoomKey); a member derives the key once, when it joins.
func DeriveRoomKey(name string, secret []byte) (*RoomKey, error) {
	if err := ValidRoomName(name); err != nil {
		return nil, err
	}
	if len(secret) < MinRoomSecret || len(secret) > MaxRoomSecret {
		return nil, fmt.Errorf("protocols: room secret is %d bytes; it must be %d to %d",
			len(secret), MinRoomSecret, MaxRoomSecret)
	}
	k := new(RoomKey)
	copy(k.k[:], argon2.IDKey(secret, []byte(roomKeySalt+name),
		roomArgonTime, roomArgonMemory, roomArgonThreads, RoomKeySize))
	return k, nil
}

// RoomKeyFromBytes makes a key from the bytes Bytes returned.
func RoomKeyFromBytes(b []byte) (*RoomKey, error) {
	if len(b) != RoomKeySize {
		return nil, fmt.Errorf("protocols: room key is %d bytes; it must be %d", len(b), RoomKeySize)
	}
	k := new(RoomKey)
	copy(k.k[:], b)
	return k, nil
}

// Bytes returns a copy of the key, for a store to keep.
func (k *RoomKey) Bytes() []byte { return append([]byte(nil), k.k[:]...) }

// Equal says whether k and o are the same key, in constant time.
func (k *RoomKey) Equal(o *RoomKey) bool {
	return o != nil && subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// String hides the key.
func (k *RoomKey) String() string { return "RoomKey(redacted)" }

// GoString hides the key from %#v.
func (k *RoomKey) GoString() string { return k.String() }

// RoomTopic returns the GossipSub topic of room name: for an open room (key
// nil) "/kith/room/1/open/" + name; for a private one "/kith/room/1/" +
// lowercase hex of SHA-256("kith-room-topic" || key), which tells outsiders
// nothing of the name.
func RoomTopic(name string, key *RoomKey) (string, error) {
	if err := ValidRoomName(name); err != nil {
		return "", err
	}
	if key == nil {
		return OpenRoomTopicPrefix + name, nil
	}
	h := sha256.New()
	h.Write([]byte(roomTopicContext))
	h.Write(key.k[:])
	return RoomTopicPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// Seal seals plaintext for topic: a random 24-byte nonce followed by
// XChaCha20-Poly1305(key, nonce, plaintext, additional data = topic).
func (k *RoomKey) Seal(topic string, plaintext []byte) []byte {
	var nonce [roomNonceSize]byte
	rand.Read(nonce[:])
	return k.sealNonce(topic, nonce, plaintext)
}

// sealNonce is Seal with a given nonce (golden vectors).
func (k *RoomKey) sealNonce(topic string, nonce [roomNonceSize]byte, plaintext []byte) []byte {
	aead, _ := chacha20poly1305.NewX(k.k[:]) // the key size is right by construction
	out := make([]byte, roomNonceSize, roomSealOver+len(plaintext))
	copy(out, nonce[:])
	return aead.Seal(out, out, plaintext, []byte(topic))
}

// Open opens a payload Seal made for topic. A payload longer than
// MaxRoomPayload is refused before anything else.
func (k *RoomKey) Open(topic string, sealed []byte) ([]byte, error) {
	if len(sealed) > MaxRoomPayload {
		return nil, fmt.Errorf("%w: sealed room payload is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(sealed), MaxRoomPayload)
	}
	if len(sealed) < roomSealOver {
		return nil, fmt.Errorf("%w: sealed room payload is %d bytes, shorter than the %d of a nonce and a tag",
			ErrMalformed, len(sealed), roomSealOver)
	}
	aead, _ := chacha20poly1305.NewX(k.k[:])
	pt, err := aead.Open(nil, sealed[:roomNonceSize], sealed[roomNonceSize:], []byte(topic))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, ErrRoomSeal)
	}
	return pt, nil
}

// EncodeRoomPayload encodes m as published on topic: the encoded message in
// an open room (key nil), sealed with key in a private one. It refuses a
// payload that would exceed MaxRoomPayload.
func EncodeRoomPayload(m RoomMessage, key *RoomKey, topic string) ([]byte, error) {
	b, err := EncodeRoomMessage(m)
	if err != nil {
		return nil, err
	}
	if key != nil {
		b = key.Seal(topic, b)
	}
	if len(b) > MaxRoomPayload {
		return nil, fmt.Errorf("%w: room payload is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(b), MaxRoomPayload)
	}
	return b, nil
}

// DecodeRoomPayload reverses EncodeRoomPayload: it opens payload with key
// (unless the room is open, key nil), decodes the message and checks that
// its room is name.
func DecodeRoomPayload(payload []byte, name string, key *RoomKey, topic string) (RoomMessage, error) {
	b := payload
	if key != nil {
		var err error
		if b, err = key.Open(topic, payload); err != nil {
			return RoomMessage{}, err
		}
	}
	m, err := DecodeRoomMessage(b)
	if err != nil {
		return RoomMessage{}, err
	}
	if m.Room != name {
		return RoomMessage{}, fmt.Errorf("%w: room message is for room %q, not %q", ErrMalformed, m.Room, name)
	}
	return m, nil
}
