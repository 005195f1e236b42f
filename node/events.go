package node

import (
	"sync"
	"time"
)

// Event types on the node's event stream (GET /v1/events).
const (
	EventPeerConnected       = "peer.connected"
	EventPeerDisconnected    = "peer.disconnected"
	EventReachabilityChanged = "reachability.changed"
	EventAddrsChanged        = "addrs.changed"
	EventMessage             = "message"  // a direct message stored, or its state changed
	EventTransfer            = "transfer" // a file transfer was offered, changed state or progressed (see Kind)
)

// Kinds of EventTransfer.
const (
	TransferOffer    = "offer"    // an incoming offer waits for accept or reject
	TransferState    = "state"    // the transfer changed state or path
	TransferProgress = "progress" // more bytes were verified (a few per second at most)
)

// Event is one line of the event stream. Fields a type does not use are
// omitted from its JSON.
type Event struct {
	Type         string        `json:"type"`
	Time         time.Time     `json:"time"`
	PeerID       string        `json:"peer_id,omitempty"`
	Path         string        `json:"path,omitempty"`
	Addr         string        `json:"addr,omitempty"`
	Reachability string        `json:"reachability,omitempty"`
	Addrs        []string      `json:"addrs,omitempty"`
	Message      *MessageInfo  `json:"message,omitempty"`
	Kind         string        `json:"kind,omitempty"` // transfer: offer, state or progress
	Transfer     *TransferInfo `json:"transfer,omitempty"`
	// Room names the room of a room event; RoomMessage is set for kind
	// "message".
	Room        string           `json:"room,omitempty"`
	RoomMessage *RoomMessageInfo `json:"room_message,omitempty"`
	RoomGap     *RoomGapInfo     `json:"room_gap,omitempty"` // kind "gap"
}

// eventBufSize bounds what a subscriber may fall behind by. A subscriber
// that falls further behind is dropped (its channel closes) rather than
// slowing the node down.
const eventBufSize = 256

// Events fans node events out to subscribers.
type Events struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

func newEvents() *Events { return &Events{subs: make(map[chan Event]struct{})} }

// Subscribe returns a channel of events from now on and a function that ends
// the subscription. The channel closes when the node stops, when cancel is
// called, or when the subscriber falls eventBufSize events behind.
func (e *Events) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, eventBufSize)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		close(ch)
		return ch, func() {}
	}
	e.subs[ch] = struct{}{}
	return ch, func() { e.drop(ch) }
}

func (e *Events) drop(ch chan Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[ch]; ok {
		delete(e.subs, ch)
		close(ch)
	}
}

// Publish sends ev to every subscriber without blocking.
func (e *Events) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// Close ends every subscription.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for ch := range e.subs {
		delete(e.subs, ch)
		close(ch)
	}
}
