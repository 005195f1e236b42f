package protocols

import (
	"crypto/sha256"
	"encoding/hex"
)

// RoomRendezvousPrefix starts the DHT rendezvous namespace of every room
// (section "Rooms", Rendezvous).
const RoomRendezvousPrefix = "/kith/room-rendezvous/1/"

// roomRendezvousHash is how many bytes of SHA-256(topic) the namespace
// keeps.
const roomRendezvousHash = 16

// RoomRendezvous returns the namespace under which the members of the room
// with GossipSub topic topic advertise themselves and look for each other
// in the DHT: RoomRendezvousPrefix + lowercase hex of the first 16 bytes of
// SHA-256(topic). A private room's topic is already a hash of its key, so
// its namespace tells someone without the secret nothing the topic does
// not.
func RoomRendezvous(topic string) string {
	sum := sha256.Sum256([]byte(topic))
	return RoomRendezvousPrefix + hex.EncodeToString(sum[:roomRendezvousHash])
}
