package chat_test

import (
	"testing"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/chat/chattest"
)

// The in-memory reference store keeps the RoomStore contract, so the
// room tests that run on it test what runs on the real store.
func TestMemRoomStoreSuite(t *testing.T) {
	chattest.RoomStoreSuite(t, func(*testing.T) chat.RoomStore { return newMemRoomStore() })
}
