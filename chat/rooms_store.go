package chat

import (
	"cmp"
	"context"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Room is a room we are a member of.
type Room struct {
	Name string
	// Key is a private room's key, nil for an open room. It is a secret: a
	// store keeps it, and nothing logs it (it formats as "RoomKey(redacted)").
	Key *protocols.RoomKey
	// Topic is the room's GossipSub topic (protocols.RoomTopic).
	Topic    string
	JoinedAt time.Time
}

// Private says whether the room is sealed with a key.
func (r Room) Private() bool { return r.Key != nil }

// RoomMessage is a room message as chat stores and reports it.
type RoomMessage struct {
	// ID names the signed message on every member: the first 16 bytes of
	// its RoomMessageID, in hex. It is empty for our own message until it
	// is published.
	ID   string
	Room string
	// Author is the signer of the pubsub message, never a payload field and
	// never the peer that forwarded it.
	Author peer.ID
	// Seq is the author's sequence number in the room (from 1).
	Seq uint64
	// Clock is the message's place in RoomOrder: the hybrid logical clock
	// the author stamped (protocols.NextRoomClock), in Unix milliseconds.
	// A message of version 1, or stored before clocks, has its SentAt's.
	Clock      int64
	SentAt     time.Time // the author's clock, as the author stated it; shown, orders nothing
	ReceivedAt time.Time // our clock when we stored it
	Text       string
	// Raw is the signed pubsub message (its protobuf encoding), kept so
	// that it can be handed on (history) and verified again by whoever gets
	// it. Our own message is stored before it is published, without Raw;
	// publishing records ID and Raw (RoomStore.SetRoomMessageSigned). One
	// still without Raw was never published (a crash in between) and is
	// published when the room is joined again.
	Raw []byte
}

// Gap is a range of an author's sequence numbers in a room that we do not
// hold although we hold a later one: From to To, inclusive.
type Gap struct {
	Author   peer.ID
	From, To uint64
}

// RoomFilter selects messages of one room from a RoomStore.
type RoomFilter struct {
	Room  string
	After time.Time // only messages received after this, if set
	// Above, when set, keeps only messages whose seq is above
	// Above[author]; authors not in the map are all kept.
	Above map[peer.ID]uint64
	// Held, when set, also leaves out the messages whose seq is in one of
	// Held[author]'s ranges (ascending and apart, as a history request
	// lists them): with Above, what a history requester holds.
	Held map[peer.ID][]protocols.HistoryRange
	// Signed keeps only messages that have Raw (what history may hand on).
	Signed bool
	// ClockAtMost, when above 0, keeps only messages whose Clock is at
	// most it (what Send follows: protocols.NextRoomClock).
	ClockAtMost int64
	// ClockAtLeast, when above 0, keeps only messages whose Clock is at
	// least it (a history request's since).
	ClockAtLeast int64
	// Limit keeps the last Limit messages in room order (0: no limit), or
	// with Oldest the first Limit; they are returned oldest first either
	// way.
	Limit  int
	Oldest bool
}

// RoomOrder is the order every member shows a room's messages in: by
// clock, then author, then seq (protocols, section "Rooms", Order and
// clocks). Every member holding the same messages shows them in the same
// order; an author's own messages stay in seq order because Send never
// stamps a clock below its previous message's, and a message is after
// every message its author held when it wrote it, up to
// protocols.MaxRoomClockFollow ahead of its clock. It returns -1, 0 or 1
// as a sorts before, with or after b.
func RoomOrder(a, b RoomMessage) int {
	if c := cmp.Compare(a.Clock, b.Clock); c != 0 {
		return c
	}
	if a.Author != b.Author {
		if a.Author < b.Author {
			return -1
		}
		return 1
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// RoomStore keeps the rooms we joined and their messages. Every write is
// durable when the method returns.
type RoomStore interface {
	// SaveRoom stores a room we joined, replacing one of the same name. It
	// keeps the key, a secret: it must not log or export it.
	SaveRoom(ctx context.Context, r Room) error
	// DeleteRoom forgets a room (not its messages). Deleting a room that is
	// not stored is not an error.
	DeleteRoom(ctx context.Context, name string) error
	// Rooms returns the stored rooms, by name.
	Rooms(ctx context.Context) ([]Room, error)
	// AddRoomMessage stores a message once per (room, author, seq): it
	// returns false, changing nothing, when one is stored already.
	AddRoomMessage(ctx context.Context, m RoomMessage) (added bool, err error)
	// AddRoomMessages stores ms as AddRoomMessage does each, in one
	// durable write: added[i] says whether ms[i] was new (a later copy of
	// an earlier one in ms is not). On an error none is stored.
	AddRoomMessages(ctx context.Context, ms []RoomMessage) (added []bool, err error)
	// SetRoomMessageSigned records the ID and signed form of a stored
	// message (our own, once published). It is not an error when the
	// message already has them.
	SetRoomMessageSigned(ctx context.Context, room string, author peer.ID, seq uint64, id string, raw []byte) error
	// Unpublished returns author's messages in room that have no Raw, by
	// seq.
	Unpublished(ctx context.Context, room string, author peer.ID) ([]RoomMessage, error)
	// HasRoomMessage says whether (room, author, seq) is stored.
	HasRoomMessage(ctx context.Context, room string, author peer.ID, seq uint64) (bool, error)
	// HighWater returns the highest seq stored from author in room, 0 for
	// none.
	HighWater(ctx context.Context, room string, author peer.ID) (uint64, error)
	// HighWaters returns HighWater for every author of room.
	HighWaters(ctx context.Context, room string) (map[peer.ID]uint64, error)
	// RoomMessages returns a room's messages selected by f, in RoomOrder.
	RoomMessages(ctx context.Context, f RoomFilter) ([]RoomMessage, error)
	// RoomGaps returns, for every author of room, the seqs from 1 to its
	// high-water mark that are not stored, as ranges by author and From.
	RoomGaps(ctx context.Context, room string) ([]Gap, error)
	// RoomFloor returns the clock below which room's history is not wanted
	// (SetRoomFloor), 0 for none.
	RoomFloor(ctx context.Context, room string) (int64, error)
	// SetRoomFloor records that room's history below clock is not wanted:
	// we joined it when it had spoken for a while, and took only its
	// recent past. It outlives the room, as its messages do.
	SetRoomFloor(ctx context.Context, room string, clock int64) error
	// RoomJoining says whether we began taking room's recent past and
	// have not finished (SetRoomJoining).
	RoomJoining(ctx context.Context, room string) (bool, error)
	// SetRoomJoining records that we began (true) or finished (false)
	// taking room's recent past: a member stopped in between, which may
	// hold a few live messages by then, takes the recent past when it
	// starts again, not the room's whole history. It outlives the room.
	SetRoomJoining(ctx context.Context, room string, joining bool) error
}
