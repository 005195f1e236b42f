package protocols

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoomRendezvous checks the namespace against values computed apart
// (printf %s TOPIC | sha256sum | cut -c1-32) and its properties.
func TestRoomRendezvous(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"/kith/room/1/open/lobby", "/kith/room-rendezvous/1/06655575d7281dc9306866b2475d8866"},
		{"/kith/room/1/d52f75d9381b85e2f43d4fd716e78c9584f0c39d028ca8e95fbc98cc903a112b",
			"/kith/room-rendezvous/1/f42f303907b8a66d8eefc99a31467be6"},
	}
	for _, tt := range tests {
		if got := RoomRendezvous(tt.topic); got != tt.want {
			t.Errorf("RoomRendezvous(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
	seen := map[string]string{}
	for _, topic := range []string{"", "/kith/room/1/open/lobby", "/kith/room/1/open/lobby2",
		"/kith/room/1/open/Lobby", "/kith/room/1/" + strings.Repeat("0", 64)} {
		ns := RoomRendezvous(topic)
		if !strings.HasPrefix(ns, RoomRendezvousPrefix) || len(ns) != len(RoomRendezvousPrefix)+32 {
			t.Errorf("RoomRendezvous(%q) = %q: want the prefix and 32 hex digits", topic, ns)
		}
		if topic != "" && strings.Contains(ns, strings.TrimPrefix(topic, OpenRoomTopicPrefix)) {
			t.Errorf("RoomRendezvous(%q) = %q shows the room", topic, ns)
		}
		if other, dup := seen[ns]; dup {
			t.Errorf("topics %q and %q share namespace %q", topic, other, ns)
		}
		seen[ns] = topic
	}
}

// goldenRendezvousFile holds, for every room vector, its topic and
// rendezvous namespace.
const goldenRendezvousFile = "rendezvous.json"

type goldenRendezvous struct {
	Room      string `json:"room"`
	Secret    string `json:"secret,omitempty"`
	Topic     string `json:"topic"`
	Namespace string `json:"namespace"`
}

func TestGoldenRoomRendezvous(t *testing.T) {
	var got []goldenRendezvous
	for _, g := range goldenRooms() {
		_, topic, _ := g.payload(t)
		got = append(got, goldenRendezvous{Room: g.msg.Room, Secret: g.secret, Topic: topic,
			Namespace: RoomRendezvous(topic)})
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join(goldenRoomDir, goldenRendezvousFile)
	if *update {
		writeGolden(t, path, b)
	}
	if want := readGolden(t, path); !bytes.Equal(b, want) {
		t.Errorf("got\n%s\nwant (%s)\n%s", b, path, want)
	}
}

// Members of a room advertise and look for each other in the DHT under a
// namespace derived from the room's topic.
func ExampleRoomRendezvous() {
	topic, _ := RoomTopic("lobby", nil)
	fmt.Println(RoomRendezvous(topic))
	// Output:
	// /kith/room-rendezvous/1/06655575d7281dc9306866b2475d8866
}
