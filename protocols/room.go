package protocols

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols/internal/pb/roompb"
	"google.golang.org/protobuf/proto"
)

// Limits and the in-band version of room messages (section "Rooms").
const (
	// RoomVersion is the only RoomMessage version this code speaks and
	// accepts.
	RoomVersion = 1
	// MaxRoomText is the most bytes of UTF-8 text a room message carries.
	MaxRoomText = 16 << 10
	// MaxRoomPayload is the most bytes of a payload published on a room's
	// topic: an encoded RoomMessage, or in a private room its sealed form.
	MaxRoomPayload = 20 << 10
	// MaxRoomRPC is the most bytes of one GossipSub RPC (after its length
	// prefix) a member reads: room for two messages of MaxRoomPayload and
	// their envelopes, and far less than go-libp2p-pubsub's default
	// (1 MiB), which every connected peer could make a member allocate by
	// claiming it in a length prefix.
	MaxRoomRPC = 64 << 10
	// MaxRoomNameLen is the most bytes of a room name.
	MaxRoomNameLen = 64
	// MaxRoomClockSkew is how far in the future a message's sent_at may be,
	// by the receiver's clock.
	MaxRoomClockSkew = 5 * time.Minute
)

// RoomMessage is one message of a room. Its author is the signer of the
// pubsub message that carries it, never a field.
type RoomMessage struct {
	// Room is the room's name; a receiver checks it is the room whose topic
	// the message came on.
	Room string
	// Seq is the author's sequence number in this room: 1 for its first
	// message, then increasing.
	Seq uint64
	// SentAt is the author's clock, sent as Unix milliseconds (finer
	// precision is dropped); Decode returns it in UTC.
	SentAt time.Time
	// Text is valid UTF-8 of at most MaxRoomText bytes; it may be empty.
	Text string
}

// MaxRoomSeq is the highest seq a room message may carry: 2^63-1.
const MaxRoomSeq = 1<<63 - 1

// ValidRoomName checks a room name: 1 to MaxRoomNameLen bytes of lowercase
// ASCII letters, digits, '-', '_' and '.', starting with a letter or a digit.
func ValidRoomName(name string) error {
	if len(name) == 0 || len(name) > MaxRoomNameLen {
		return fmt.Errorf("%w: room name is %d bytes; it must be 1 to %d", ErrMalformed, len(name), MaxRoomNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w: room name must start with a lowercase letter or a digit", ErrMalformed)
		}
		if !alnum && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: room name has byte %#02x at %d; only a-z, 0-9, '-', '_' and '.' are allowed",
				ErrMalformed, c, i)
		}
	}
	return nil
}

// check applies the rules of section "Rooms" to m.
func (m RoomMessage) check() error {
	if err := ValidRoomName(m.Room); err != nil {
		return err
	}
	if m.Seq == 0 || m.Seq > MaxRoomSeq {
		return fmt.Errorf("%w: room message seq is %d; it must be 1 to %d", ErrMalformed, m.Seq, uint64(MaxRoomSeq))
	}
	if m.SentAt.UnixMilli() <= 0 {
		return fmt.Errorf("%w: room message sent_at is %d; it must be a positive number of Unix milliseconds",
			ErrMalformed, m.SentAt.UnixMilli())
	}
	if len(m.Text) > MaxRoomText {
		return fmt.Errorf("%w: room message text is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(m.Text), MaxRoomText)
	}
	if !utf8.ValidString(m.Text) {
		return fmt.Errorf("%w: room message text is not valid UTF-8", ErrMalformed)
	}
	return nil
}

// CheckTime says whether m's sent_at is acceptable at now: no more than
// MaxRoomClockSkew in the future.
func (m RoomMessage) CheckTime(now time.Time) error {
	if m.SentAt.After(now.Add(MaxRoomClockSkew)) {
		return fmt.Errorf("%w: room message sent_at %s is more than %s ahead of %s",
			ErrMalformed, m.SentAt.Format(time.RFC3339), MaxRoomClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// EncodeRoomMessage encodes m (version RoomVersion) after checking it by
// the rules DecodeRoomMessage applies.
func EncodeRoomMessage(m RoomMessage) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&roompb.RoomMessage{
		Version: RoomVersion, Room: m.Room, Seq: m.Seq, SentAt: m.SentAt.UnixMilli(), Text: m.Text,
	})
	if err != nil {
		return nil, fmt.Errorf("protocols: encode room message: %w", err)
	}
	return b, nil
}

// DecodeRoomMessage decodes an unsealed room message: b longer than
// MaxRoomPayload is refused before it is decoded, then the version is
// checked before any other field, then the rules of section "Rooms".
func DecodeRoomMessage(b []byte) (RoomMessage, error) {
	if len(b) > MaxRoomPayload {
		return RoomMessage{}, fmt.Errorf("%w: room message is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, len(b), MaxRoomPayload)
	}
	var pm roompb.RoomMessage
	if err := proto.Unmarshal(b, &pm); err != nil {
		return RoomMessage{}, fmt.Errorf("%w: %s", ErrMalformed, protoError(err))
	}
	if err := checkWireTypes(pm.ProtoReflect()); err != nil {
		return RoomMessage{}, err
	}
	if pm.Version != RoomVersion {
		return RoomMessage{}, fmt.Errorf("%w: room message version %d; this side speaks %d",
			ErrUnsupportedVersion, pm.Version, RoomVersion)
	}
	m := RoomMessage{Room: pm.Room, Seq: pm.Seq, SentAt: time.UnixMilli(pm.SentAt).UTC(), Text: pm.Text}
	if err := m.check(); err != nil {
		return RoomMessage{}, err
	}
	return m, nil
}
