package chat

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// heldBelow keeps, for the authors of a room, a bound at or above the
// highest seq the store holds of each, so that the validator tells a new
// message (above the bound: almost every one) from a replay without reading
// the store. Only a seq at or below the bound is looked up. The validator
// runs on one worker for every copy of every message, before pubsub marks
// it seen; on a member every newcomer asks for history (the node everyone
// bootstraps from), a store read per copy queued behind the history
// answers' reads, and the queue (1024) overflowed: TestSoakChurn (build tag
// soak) counted 49 613 messages dropped there on that node in 30 minutes,
// and its room fell behind for good.
//
// Every write of the room's messages raises the bound of its author first
// (raise), so the bound never falls below what is stored. An author not
// held here is read from the store when the validator first needs it; one
// raised in between is kept at the higher of the two. At most
// maxHeldBelow authors are kept: past that all are forgotten, and read
// again as needed.
type heldBelow struct {
	mu sync.Mutex
	m  map[peer.ID]uint64
}

const maxHeldBelow = 4096

func newHeldBelow() *heldBelow { return &heldBelow{m: map[peer.ID]uint64{}} }

// raise records that seq of author is about to be stored.
func (h *heldBelow) raise(author peer.ID, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hw, ok := h.m[author]; ok && seq > hw {
		h.m[author] = seq
	}
	// Not held: read from the store when needed, which then holds seq or
	// is about to (a replay of it in that instant passes the validator, and
	// the store keeps it once).
}

// mayHold says whether seq of author may be stored already: false means
// it is not.
func (h *heldBelow) mayHold(ctx context.Context, store RoomStore, room string, author peer.ID, seq uint64) (bool, error) {
	h.mu.Lock()
	hw, ok := h.m[author]
	h.mu.Unlock()
	if ok {
		return seq <= hw, nil
	}
	stored, err := store.HighWater(ctx, room, author)
	if err != nil {
		return true, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.m) >= maxHeldBelow {
		clear(h.m)
	}
	hw = max(h.m[author], stored)
	h.m[author] = hw
	return seq <= hw, nil
}
