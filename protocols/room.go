package protocols

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols/internal/pb/roompb"
	"google.golang.org/protobuf/proto"
)

// Limits and the in-band version of room messages (section "Rooms").
const (
	// RoomVersion is the RoomMessage version this code writes: version 2,
	// with a clock. It reads version 1 too (RoomVersionNoClock).
	RoomVersion = 2
	// RoomVersionNoClock is the version written before clocks: a reader
	// takes its clock to be its sent_at.
	RoomVersionNoClock = 1
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
	// MaxRoomClockLead is how far ahead of the receiver's clock a message's
	// clock may be (RoomMessage.CheckTime): 6 days, twice
	// MaxRoomClockFollow, so that every member hears an author whose clock
	// is up to MaxRoomClockFollow (3 days) ahead of its own, even when that
	// author follows a room clock that is itself MaxRoomClockFollow ahead.
	MaxRoomClockLead = 2 * MaxRoomClockFollow
	// MaxRoomClockFollow is how far ahead of its own clock an author
	// follows the clocks it holds (NextRoomClock): a reply is ordered
	// after what it answers when that was stamped at most 3 days ahead of
	// the replier's clock.
	MaxRoomClockFollow = 3 * 24 * time.Hour
	// MaxRoomClock is the highest clock (and sent_at) a room message may
	// carry: 9999-12-31T23:59:59.999Z in Unix milliseconds, the last
	// instant RFC 3339 and JSON can write.
	MaxRoomClock = 253402300799999
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
	// precision is dropped); Decode returns it in UTC. It is shown, and
	// orders nothing.
	SentAt time.Time
	// Clock is the message's place in the room's order: a hybrid logical
	// clock in Unix milliseconds, from SentAt's millisecond to
	// MaxRoomClock (NextRoomClock says how an author stamps it). A
	// version 1 message has none; Decode gives it its SentAt.
	Clock int64
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
	if m.Clock < m.SentAt.UnixMilli() || m.Clock > MaxRoomClock {
		return fmt.Errorf("%w: room message clock is %d; it must be its sent_at (%d) to %d",
			ErrMalformed, m.Clock, m.SentAt.UnixMilli(), int64(MaxRoomClock))
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

// ErrRoomClockAhead is wrapped by CheckTime's error: the message's clock is
// further ahead of the receiver's than MaxRoomClockLead. The message is
// well formed, and another member, whose clock is ahead of ours, may
// rightly take it.
var ErrRoomClockAhead = errors.New("protocols: room message clock too far ahead")

// CheckTime says whether m's clock is acceptable at now: no more than
// MaxRoomClockLead ahead of it. (sent_at is at most the clock.)
func (m RoomMessage) CheckTime(now time.Time) error {
	if limit := now.Add(MaxRoomClockLead).UnixMilli(); m.Clock > limit {
		return fmt.Errorf("%w: clock %s is more than %s ahead of %s", ErrRoomClockAhead,
			time.UnixMilli(m.Clock).UTC().Format(time.RFC3339), MaxRoomClockLead, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// NextRoomClock is the clock an author stamps on its next message in a
// room (section "Rooms", Order and clocks), at now:
//
//	max(now, prev + 1, followed + 1, F if held > F), F = now + MaxRoomClockFollow
//
// prev is the clock of its previous message in the room, held the highest
// clock it holds there, and followed the highest it holds that is at most
// F (each 0 for none). So the message is after every message its author
// holds up to MaxRoomClockFollow ahead of its clock, and no more than that
// far ahead when it holds messages further ahead. It never exceeds
// MaxRoomClock (an equal clock is then ordered by seq).
func NextRoomClock(prev, held, followed int64, now time.Time) int64 {
	w := max(min(now.UnixMilli(), MaxRoomClock), 0)
	f := w + MaxRoomClockFollow.Milliseconds()
	// Clamped first, so that nothing below overflows.
	prev, held, followed = min(prev, MaxRoomClock), min(held, MaxRoomClock), min(followed, f)
	c := max(w, prev+1, followed+1, 1)
	if held > f {
		c = max(c, f)
	}
	return min(c, MaxRoomClock)
}

// RoomClockFollows is the highest clock NextRoomClock follows at now:
// now + MaxRoomClockFollow, in Unix milliseconds.
func RoomClockFollows(now time.Time) int64 {
	return max(min(now.UnixMilli(), MaxRoomClock), 0) + MaxRoomClockFollow.Milliseconds()
}

// EncodeRoomMessage encodes m (version RoomVersion) after checking it by
// the rules DecodeRoomMessage applies.
func EncodeRoomMessage(m RoomMessage) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&roompb.RoomMessage{
		Version: RoomVersion, Room: m.Room, Seq: m.Seq, SentAt: m.SentAt.UnixMilli(), Text: m.Text, Clock: m.Clock,
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
	m := RoomMessage{Room: pm.Room, Seq: pm.Seq, SentAt: time.UnixMilli(pm.SentAt).UTC(), Text: pm.Text, Clock: pm.Clock}
	switch pm.Version {
	case RoomVersion:
	case RoomVersionNoClock:
		m.Clock = pm.SentAt // field 6 means nothing in version 1
	default:
		return RoomMessage{}, fmt.Errorf("%w: room message version %d; this side speaks %d and reads %d",
			ErrUnsupportedVersion, pm.Version, RoomVersion, RoomVersionNoClock)
	}
	if err := m.check(); err != nil {
		return RoomMessage{}, err
	}
	return m, nil
}
