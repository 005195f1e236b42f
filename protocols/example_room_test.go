package protocols_test

import (
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
)

// An open room: the payload is the encoded message, the topic names the room.
func ExampleEncodeRoomPayload() {
	topic, _ := protocols.RoomTopic("lobby", nil)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := protocols.RoomMessage{Room: "lobby", Seq: 1, SentAt: at, Clock: protocols.NextRoomClock(0, 0, 0, at), Text: "hi"}
	payload, err := protocols.EncodeRoomPayload(m, nil, topic)
	fmt.Println(topic, err)
	fmt.Printf("%x\n", payload)
	got, err := protocols.DecodeRoomPayload(payload, "lobby", nil, topic)
	fmt.Println(got.Seq, got.Text, err)
	// Output:
	// /kith/room/1/open/lobby <nil>
	// 080212056c6f62627918012080d0eab6b7332a0268693080d0eab6b733
	// 1 hi <nil>
}

// A private room: the key comes from the room's name and secret; the topic
// is a hash of the key, and the payload is sealed for that topic.
func ExampleDeriveRoomKey() {
	key, err := protocols.DeriveRoomKey("team", []byte("correct horse battery staple"))
	if err != nil {
		panic(err)
	}
	topic, _ := protocols.RoomTopic("team", key)
	fmt.Println(topic)
	fmt.Println(key) // never the key itself

	now := time.Now()
	m := protocols.RoomMessage{Room: "team", Seq: 7, SentAt: now, Clock: protocols.NextRoomClock(0, 0, 0, now), Text: "secret plans"}
	sealed, _ := protocols.EncodeRoomPayload(m, key, topic)
	got, err := protocols.DecodeRoomPayload(sealed, "team", key, topic)
	fmt.Println(got.Text, err)
	_, err = protocols.DecodeRoomPayload(sealed, "team", nil, topic) // an outsider
	fmt.Println(err != nil)
	// Output:
	// /kith/room/1/d52f75d9381b85e2f43d4fd716e78c9584f0c39d028ca8e95fbc98cc903a112b
	// RoomKey(redacted)
	// secret plans <nil>
	// true
}
