package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MessageID is a message's random 128-bit identity, chosen by its sender.
type MessageID [16]byte

// NewMessageID returns a fresh random ID.
func NewMessageID() MessageID {
	var id MessageID
	rand.Read(id[:])
	return id
}

// String is the ID in lowercase hex (32 characters).
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// ParseMessageID parses the hex form of an ID.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("chat: %q is not a message ID (32 hex digits)", s)
	}
	copy(id[:], b)
	return id, nil
}

// State is where a direct message stands.
type State string

// Message states.
const (
	StateReceived  State = "received"  // incoming, stored
	StateQueued    State = "queued"    // outgoing, in the outbox, not acked yet
	StateDelivered State = "delivered" // outgoing, acked by the receiver
	StateFailed    State = "failed"    // outgoing, refused by the receiver (not a contact, blocked)
)

// Message is a direct message as chat stores and reports it.
type Message struct {
	ID     MessageID
	Peer   peer.ID // the other side: the sender of an incoming message, the recipient of an outgoing one
	Out    bool    // true when we sent it
	Text   string
	SentAt time.Time // the sender's clock, as the sender stated it
	State  State
	// Seq orders messages in the store (assigned by the store, increasing).
	Seq int64
}

// ErrNotFound is returned for a message ID the store does not hold.
var ErrNotFound = errors.New("chat: no such message")

// Filter selects messages from a Store.
type Filter struct {
	Peer     peer.ID // only messages with this peer, if set
	AfterSeq int64   // only messages with Seq > AfterSeq
	Limit    int     // at most this many, oldest first (0: no limit)
}

// Store keeps direct messages. Every write is durable (committed and synced
// to disk) when the method returns: chat acks a message only after
// AddIncoming returned.
type Store interface {
	// AddIncoming stores a received message. It returns false, changing
	// nothing, when a message with the same ID from the same peer is
	// already stored.
	AddIncoming(ctx context.Context, m Message) (added bool, err error)
	// AddOutgoing stores a message we are sending, in state queued.
	AddOutgoing(ctx context.Context, m Message) error
	// MarkDelivered moves an outgoing message to delivered. Marking a
	// delivered message again is not an error.
	MarkDelivered(ctx context.Context, id MessageID) error
	// MarkFailed moves a queued outgoing message to failed: the receiver
	// refused it, so the outbox stops retrying.
	MarkFailed(ctx context.Context, id MessageID) error
	// Outbox returns queued outgoing messages, oldest first: for peer p, or
	// for every peer when p is empty.
	Outbox(ctx context.Context, p peer.ID) ([]Message, error)
	// Messages returns stored messages, oldest first.
	Messages(ctx context.Context, f Filter) ([]Message, error)
}
