package node

import "time"

// EventRoom is the event type of room activity; Event.Kind says which.
const EventRoom = "room"

// Kinds of EventRoom.
const (
	RoomKindMessage = "message" // a room message was stored (ours, received or backfilled)
	RoomKindJoined  = "joined"  // we joined a room
	RoomKindLeft    = "left"    // we left a room
	RoomKindGap     = "gap"     // messages of an author are missing; history is asked for them
)

// RoomGapInfo names an author's missing messages in a room: seqs From to
// To, inclusive. Members are asked for them over history; the messages
// that come back are reported as kind "message".
type RoomGapInfo struct {
	Author string `json:"author"`
	Name   string `json:"name,omitempty"` // the author's contact name, if any
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
}

// RoomInfo is a room we are a member of, as the API and `kith room ls`
// show it.
type RoomInfo struct {
	Name    string `json:"name"`
	Private bool   `json:"private"`
	// Members is how many peers we see in the room's topic now (us not
	// counted).
	Members  int       `json:"members"`
	Messages int       `json:"messages"` // messages stored
	JoinedAt time.Time `json:"joined_at"`
}

// RoomMessageInfo is a room message as the API, `kith room log --json` and
// room events carry it. ID is the same on every member.
type RoomMessageInfo struct {
	ID   string `json:"id"`
	Room string `json:"room"`
	From string `json:"from"`           // the author's peer ID (the signer)
	Name string `json:"name,omitempty"` // the author's contact name, if any
	Mine bool   `json:"mine,omitempty"` // we wrote it
	// Seq is the author's sequence number in the room: with From, it names
	// the message even before it has an ID (ours, until published).
	Seq  uint64 `json:"seq"`
	Text string `json:"text"`
	// SentAt is the author's clock as it stated it; ReceivedAt ours.
	// Neither orders the room.
	SentAt     time.Time `json:"sent_at"`
	ReceivedAt time.Time `json:"received_at"`
	// Clock is the message's place in the room's order (chat.RoomOrder:
	// clock, then author, then seq), the same on every member: a hybrid
	// logical clock in Unix milliseconds (protocols, section "Rooms").
	Clock int64 `json:"clock"`
}
