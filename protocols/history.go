package protocols

import (
	"fmt"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// HistoryProtocol is the stream protocol of room history, specified in the
// package documentation (section "Room history").
const HistoryProtocol protocol.ID = "/kith/history/1.0.0"

// Limits and the in-band version of /kith/history/1.0.0.
const (
	// HistoryVersion is the only HistoryRequest version this code speaks
	// and accepts.
	HistoryVersion = 1
	// MaxHistoryRequest is the most bytes of a frame a server reads before
	// it has read the request (after the length prefix). Every request the
	// rules allow fits: MaxHistoryAuthors authors of MaxHistoryAuthorLen
	// bytes, each with the largest through, and MaxHistoryHeld held ranges
	// make about 91 KiB (TestHistoryLargestRequestFits).
	MaxHistoryRequest = 96 << 10
	// MaxHistoryAuthors is the most authors a request lists.
	MaxHistoryAuthors = 1024
	// MaxHistoryMessages is the most messages a request asks for.
	MaxHistoryMessages = 2000
	// MaxHistoryFrame is the most bytes of any frame (after the length
	// prefix); a batch is cut to fit.
	MaxHistoryFrame = 1 << 20
	// MaxHistoryRawMessage is the most bytes of one signed pubsub message
	// in a batch: a payload of MaxRoomPayload and room for the envelope
	// (from, seqno, topic, signature, and a key for identities whose peer
	// ID does not hold it).
	MaxHistoryRawMessage = MaxRoomPayload + 4<<10
	// MaxHistoryAuthorLen is the most bytes of an author's binary peer ID.
	MaxHistoryAuthorLen = 64
	// MaxHistoryHeld is the most held ranges a request lists, over all its
	// authors. With them, the largest request is about 91 KiB: it still
	// fits MaxHistoryRequest, which servers that read no held ranges also
	// apply.
	MaxHistoryHeld = 512
	// maxHistoryTopic is the most bytes of a topic: the open prefix and the
	// longest room name.
	maxHistoryTopic = len(OpenRoomTopicPrefix) + MaxRoomNameLen
)

// HistoryHave says that the requester holds seqs 1 to Through of Author in
// the room, and the seqs of Held above them.
type HistoryHave struct {
	Author  peer.ID
	Through uint64
	// Held lists ranges of seqs above Through that the requester holds
	// too, ascending and apart: the first starts above Through + 1, each
	// next above the previous one's To + 1. A server sends none of them.
	Held []HistoryRange
}

// HistoryRange is the seqs From to To, inclusive (From ≤ To).
type HistoryRange struct {
	From, To uint64
}

// Contains says whether seq is in r.
func (r HistoryRange) Contains(seq uint64) bool { return r.From <= seq && seq <= r.To }

// Lacks says whether a requester that sent h lacks seq of h's author: seq
// is above Through and in none of Held.
func (h HistoryHave) Lacks(seq uint64) bool {
	if seq <= h.Through {
		return false
	}
	// Held is ascending: the last range starting at or below seq is the
	// only one that can hold it.
	i := sort.Search(len(h.Held), func(i int) bool { return h.Held[i].From > seq })
	return i == 0 || !h.Held[i-1].Contains(seq)
}

// HistoryRequest asks for the messages of Topic that the requester lacks:
// for every listed author those above Through and outside Held, for every
// other author all.
type HistoryRequest struct {
	Topic string
	Have  []HistoryHave
	// Max is the most messages the server sends in answer: 1 to
	// MaxHistoryMessages.
	Max int
	// Since, when not 0, asks only for messages whose clock is at least
	// Since: the requester wants nothing older (a member that joined a
	// busy room took its newest messages only).
	Since uint64
	// Latest asks for the newest messages the requester lacks rather than
	// the oldest (still sent in room order): a member that joins a room
	// takes its recent past, not all of it.
	Latest bool
}

// HistoryBatch carries signed pubsub messages (the protobuf encoding of a
// pubsub Message each, as the server stored it), in room order. The
// framing only counts them; the requester verifies each.
type HistoryBatch struct {
	Messages [][]byte
}

// HistoryEnd ends a successful answer. More says that the server stopped at
// the request's Max, or at its own cap on an answer, with more to send: the
// requester may ask again.
type HistoryEnd struct {
	More bool
}

// HistoryFrame is one frame of /kith/history/1.0.0. Exactly one field is
// set.
type HistoryFrame struct {
	Request *HistoryRequest
	Batch   *HistoryBatch
	End     *HistoryEnd
	Error   *RemoteError
}

const historyParts = "request, batch, end, error"

// checkParts checks that exactly one of the frame's parts is set.
func (f HistoryFrame) checkParts() error {
	n := 0
	for _, set := range []bool{f.Request != nil, f.Batch != nil, f.End != nil, f.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: frame has %d parts; it must have exactly one of %s", ErrMalformed, n, historyParts)
	}
	return nil
}

// CheckRoomTopic checks that topic is a room topic (section "Rooms"):
// OpenRoomTopicPrefix and a valid room name, or RoomTopicPrefix and 64
// lowercase hex digits.
func CheckRoomTopic(topic string) error {
	if len(topic) > maxHistoryTopic {
		return fmt.Errorf("%w: topic is %d bytes, more than the %d a room topic has",
			ErrMalformed, len(topic), maxHistoryTopic)
	}
	if name, ok := strings.CutPrefix(topic, OpenRoomTopicPrefix); ok {
		if err := ValidRoomName(name); err != nil {
			return fmt.Errorf("%w: topic %q is not a room topic", ErrMalformed, topic)
		}
		return nil
	}
	h, ok := strings.CutPrefix(topic, RoomTopicPrefix)
	if !ok || len(h) != 64 || strings.IndexFunc(h, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'f')
	}) >= 0 {
		return fmt.Errorf("%w: topic %q is not a room topic", ErrMalformed, topic)
	}
	return nil
}

// check applies the rules of section "Room history" to a request.
func (r *HistoryRequest) check() error {
	if err := CheckRoomTopic(r.Topic); err != nil {
		return err
	}
	if len(r.Have) > MaxHistoryAuthors {
		return fmt.Errorf("%w: request lists %d authors, more than the %d allowed",
			ErrFrameTooLarge, len(r.Have), MaxHistoryAuthors)
	}
	seen := make(map[peer.ID]bool, len(r.Have))
	held := 0
	for i, h := range r.Have {
		if err := checkHistoryAuthor(i, []byte(h.Author)); err != nil {
			return err
		}
		if seen[h.Author] {
			return fmt.Errorf("%w: request have %d: author %s is listed twice", ErrMalformed, i, h.Author)
		}
		seen[h.Author] = true
		if held += len(h.Held); held > MaxHistoryHeld {
			return fmt.Errorf("%w: request lists more than %d held ranges", ErrFrameTooLarge, MaxHistoryHeld)
		}
		if err := checkHistoryHeld(i, h); err != nil {
			return err
		}
	}
	switch {
	case r.Max <= 0:
		return fmt.Errorf("%w: request max_messages is %d; it must be at least 1", ErrMalformed, r.Max)
	case r.Max > MaxHistoryMessages:
		return fmt.Errorf("%w: request max_messages is %d, more than the %d allowed",
			ErrFrameTooLarge, r.Max, MaxHistoryMessages)
	}
	return nil
}

// checkHistoryHeld checks the held ranges of a request's have i: each
// From ≤ To, ascending and apart, above Through + 1.
func checkHistoryHeld(i int, h HistoryHave) error {
	last := h.Through // the last seq held so far
	for k, r := range h.Held {
		switch {
		case r.From > r.To:
			return fmt.Errorf("%w: request have %d: held range %d is %d to %d; from must be at most to",
				ErrMalformed, i, k, r.From, r.To)
		case r.From <= last || r.From-last < 2:
			return fmt.Errorf("%w: request have %d: held range %d starts at %d; ranges must be ascending and apart, "+
				"each starting above %d + 1 (through, or the range before's to)", ErrMalformed, i, k, r.From, last)
		}
		last = r.To
	}
	return nil
}

// checkHistoryAuthor checks the author of a request's have i.
func checkHistoryAuthor(i int, b []byte) error {
	if len(b) > MaxHistoryAuthorLen {
		return fmt.Errorf("%w: request have %d: author is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, i, len(b), MaxHistoryAuthorLen)
	}
	if _, err := peer.IDFromBytes(b); err != nil {
		return fmt.Errorf("%w: request have %d: author is not a peer ID", ErrMalformed, i)
	}
	return nil
}

// check applies the rules of section "Room history" to a batch.
func (b *HistoryBatch) check() error {
	if len(b.Messages) == 0 {
		return fmt.Errorf("%w: batch carries no message", ErrMalformed)
	}
	for i, m := range b.Messages {
		if err := checkHistoryMessage(i, len(m)); err != nil {
			return err
		}
	}
	return nil
}

func checkHistoryMessage(i, n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: batch message %d is empty", ErrMalformed, i)
	case n > MaxHistoryRawMessage:
		return fmt.Errorf("%w: batch message %d is %d bytes, more than the %d allowed",
			ErrFrameTooLarge, i, n, MaxHistoryRawMessage)
	}
	return nil
}
