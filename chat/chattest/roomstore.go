package chattest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// RoomStoreSuite checks that the chat.RoomStore open returns keeps the
// interface's documented semantics. open is called once per subtest and
// must return an empty store (closed by open's own cleanup, if it needs
// closing). Times in the suite are whole milliseconds: a store may keep no
// more.
func RoomStoreSuite(t *testing.T, open func(t *testing.T) chat.RoomStore) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, chat.RoomStore)
	}{
		{"Rooms", testRooms},
		{"DeleteRoomKeepsMessages", testDeleteRoomKeepsMessages},
		{"AddOncePerRoomAuthorSeq", testAddOnce},
		{"AddMany", testAddMany},
		{"RoundTrip", testRoundTrip},
		{"RoomOrder", testRoomOrder},
		{"OrderByClockNotSentAt", testOrderByClock},
		{"Limit", testLimit},
		{"Above", testAbove},
		{"SignedAndAfter", testSignedAndAfter},
		{"SetRoomMessageSigned", testSetSigned},
		{"Unpublished", testUnpublished},
		{"HighWater", testHighWater},
		{"RoomGaps", testRoomGaps},
		{"Floor", testFloor},
		{"Joining", testJoining},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

// base is the suite's clock: messages are sent at base plus whole seconds.
var base = time.UnixMilli(1_767_225_600_000).UTC() // 2026-01-01

// authors returns n fresh peer IDs in peer.ID order (RoomOrder's).
func authors(t *testing.T, n int) []peer.ID {
	t.Helper()
	out := make([]peer.ID, n)
	for i := range out {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = peer.IDFromPublicKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// rm is a received message of author in room, sent at base+sec seconds
// with that as its clock, with an ID and a signed form.
func rm(room string, author peer.ID, seq uint64, sec int, text string) chat.RoomMessage {
	at := base.Add(time.Duration(sec) * time.Second)
	return chat.RoomMessage{
		ID: fmt.Sprintf("%032x", seq*1000+uint64(sec)), Room: room, Author: author, Seq: seq, Clock: at.UnixMilli(),
		SentAt: at, ReceivedAt: at.Add(time.Millisecond),
		Text: text, Raw: []byte("signed " + text),
	}
}

func add(t *testing.T, s chat.RoomStore, ms ...chat.RoomMessage) {
	t.Helper()
	for _, m := range ms {
		added, err := s.AddRoomMessage(t.Context(), m)
		if err != nil || !added {
			t.Fatalf("AddRoomMessage(%s %s/%d) = %v, %v; want true, nil", m.Room, m.Author, m.Seq, added, err)
		}
	}
}

func list(t *testing.T, s chat.RoomStore, f chat.RoomFilter) []chat.RoomMessage {
	t.Helper()
	ms, err := s.RoomMessages(t.Context(), f)
	if err != nil {
		t.Fatalf("RoomMessages(%+v): %v", f, err)
	}
	return ms
}

// textsOf lists the texts of ms, in order.
func textsOf(ms []chat.RoomMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func wantTexts(t *testing.T, what string, ms []chat.RoomMessage, want ...string) {
	t.Helper()
	if got := textsOf(ms); !slices.Equal(got, want) {
		t.Errorf("%s: %q, want %q", what, got, want)
	}
}

func testRooms(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	key, err := protocols.RoomKeyFromBytes(bytes.Repeat([]byte{7}, protocols.RoomKeySize))
	if err != nil {
		t.Fatal(err)
	}
	topic, _ := protocols.RoomTopic("ops", key)
	open := chat.Room{Name: "lobby", Topic: protocols.OpenRoomTopicPrefix + "lobby", JoinedAt: base}
	private := chat.Room{Name: "ops", Key: key, Topic: topic, JoinedAt: base.Add(time.Second)}
	for _, r := range []chat.Room{private, open} {
		if err := s.SaveRoom(ctx, r); err != nil {
			t.Fatalf("SaveRoom(%s): %v", r.Name, err)
		}
	}
	rooms, err := s.Rooms(ctx)
	if err != nil || len(rooms) != 2 {
		t.Fatalf("Rooms() = %v, %v; want 2 rooms", rooms, err)
	}
	for i, want := range []chat.Room{open, private} { // by name
		got := rooms[i]
		if got.Name != want.Name || got.Topic != want.Topic || !got.JoinedAt.Equal(want.JoinedAt) ||
			got.Private() != want.Private() || (want.Key != nil && !want.Key.Equal(got.Key)) {
			t.Errorf("Rooms()[%d] = %+v, want %+v", i, got, want)
		}
	}
	// Saving a room again replaces it.
	replaced := chat.Room{Name: "ops", Topic: protocols.OpenRoomTopicPrefix + "ops", JoinedAt: base.Add(time.Hour)}
	if err := s.SaveRoom(ctx, replaced); err != nil {
		t.Fatal(err)
	}
	rooms, _ = s.Rooms(ctx)
	if len(rooms) != 2 || rooms[1].Private() || rooms[1].Topic != replaced.Topic || !rooms[1].JoinedAt.Equal(replaced.JoinedAt) {
		t.Errorf("after replacing ops: %+v", rooms)
	}
	for _, name := range []string{"ops", "ops", "never-joined"} { // twice, and one never stored
		if err := s.DeleteRoom(ctx, name); err != nil {
			t.Errorf("DeleteRoom(%s): %v", name, err)
		}
	}
	rooms, _ = s.Rooms(ctx)
	if len(rooms) != 1 || rooms[0].Name != "lobby" {
		t.Errorf("after deleting ops: %+v", rooms)
	}
}

func testDeleteRoomKeepsMessages(t *testing.T, s chat.RoomStore) {
	a := authors(t, 1)[0]
	if err := s.SaveRoom(t.Context(), chat.Room{Name: "lobby", Topic: protocols.OpenRoomTopicPrefix + "lobby", JoinedAt: base}); err != nil {
		t.Fatal(err)
	}
	add(t, s, rm("lobby", a, 1, 1, "kept"))
	if err := s.DeleteRoom(t.Context(), "lobby"); err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "messages of a deleted room", list(t, s, chat.RoomFilter{Room: "lobby"}), "kept")
	if hw, err := s.HighWater(t.Context(), "lobby", a); hw != 1 || err != nil {
		t.Errorf("HighWater after DeleteRoom = %d, %v; want 1", hw, err)
	}
}

// AddRoomMessages stores a batch as AddRoomMessage would each, saying
// which were new; a batch with one message the store refuses stores none.
func testAddMany(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	as := authors(t, 2)
	add(t, s, rm("lobby", as[0], 1, 1, "a1"))
	batch := []chat.RoomMessage{rm("lobby", as[0], 2, 2, "a2"), rm("lobby", as[0], 1, 3, "a1 again"),
		rm("lobby", as[1], 1, 4, "b1"), rm("lobby", as[1], 1, 5, "b1 twice in the batch")}
	added, err := s.AddRoomMessages(ctx, batch)
	if err != nil || !slices.Equal(added, []bool{true, false, true, false}) {
		t.Fatalf("AddRoomMessages = %v, %v; want [true false true false]", added, err)
	}
	wantTexts(t, "after the batch", list(t, s, chat.RoomFilter{Room: "lobby"}), "a1", "a2", "b1")
	bad := rm("lobby", as[1], 0, 7, "seq 0")
	if added, err := s.AddRoomMessages(ctx, []chat.RoomMessage{rm("lobby", as[1], 2, 6, "b2"), bad}); err == nil {
		t.Errorf("a batch with seq 0 = %v, nil; want an error", added)
	}
	wantTexts(t, "after the refused batch", list(t, s, chat.RoomFilter{Room: "lobby"}), "a1", "a2", "b1")
	if added, err := s.AddRoomMessages(ctx, nil); err != nil || len(added) != 0 {
		t.Errorf("an empty batch = %v, %v", added, err)
	}
}

func testAddOnce(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	as := authors(t, 2)
	first := rm("lobby", as[0], 1, 1, "first")
	add(t, s, first)
	again := rm("lobby", as[0], 1, 5, "a replay with other text")
	again.ID, again.Raw = "ffffffffffffffffffffffffffffffff", []byte("other")
	if added, err := s.AddRoomMessage(ctx, again); added || err != nil {
		t.Errorf("AddRoomMessage of a held (room, author, seq) = %v, %v; want false, nil", added, err)
	}
	// The same seq from another author, or in another room, is another message.
	add(t, s, rm("lobby", as[1], 1, 2, "other author"), rm("other", as[0], 1, 3, "other room"))
	ms := list(t, s, chat.RoomFilter{Room: "lobby"})
	wantTexts(t, "lobby", ms, "first", "other author")
	if ms[0].ID != first.ID || !bytes.Equal(ms[0].Raw, first.Raw) || !ms[0].SentAt.Equal(first.SentAt) {
		t.Errorf("the replay changed the stored message: %+v", ms[0])
	}
	for _, tt := range []struct {
		room   string
		author peer.ID
		seq    uint64
		want   bool
	}{
		{"lobby", as[0], 1, true}, {"lobby", as[1], 1, true}, {"other", as[0], 1, true},
		{"lobby", as[0], 2, false}, {"other", as[1], 1, false}, {"nowhere", as[0], 1, false},
	} {
		if held, err := s.HasRoomMessage(ctx, tt.room, tt.author, tt.seq); held != tt.want || err != nil {
			t.Errorf("HasRoomMessage(%s, %s, %d) = %v, %v; want %v", tt.room, tt.author, tt.seq, held, err, tt.want)
		}
	}
}

func testRoundTrip(t *testing.T, s chat.RoomStore) {
	a := authors(t, 1)[0]
	signed := rm("lobby", a, 7, 1, "héllo\nworld")
	signed.Clock += 86400_000 // a reply to a message a day ahead: the clock is not the sent_at
	own := chat.RoomMessage{Room: "lobby", Author: a, Seq: 8, Clock: signed.Clock + 1, SentAt: base.Add(2 * time.Second),
		ReceivedAt: base.Add(2 * time.Second), Text: ""} // ours, not published: no ID, no Raw; empty text is allowed
	add(t, s, signed, own)
	ms := list(t, s, chat.RoomFilter{Room: "lobby"})
	if len(ms) != 2 {
		t.Fatalf("got %d messages, want 2", len(ms))
	}
	for i, want := range []chat.RoomMessage{signed, own} {
		got := ms[i]
		if got.ID != want.ID || got.Room != want.Room || got.Author != want.Author || got.Seq != want.Seq ||
			got.Clock != want.Clock || !got.SentAt.Equal(want.SentAt) || !got.ReceivedAt.Equal(want.ReceivedAt) || got.Text != want.Text ||
			!bytes.Equal(got.Raw, want.Raw) {
			t.Errorf("message %d read back as %+v, want %+v", i, got, want)
		}
	}
	if len(ms[1].Raw) != 0 || ms[1].ID != "" {
		t.Errorf("an unpublished message read back with ID %q and %d raw bytes", ms[1].ID, len(ms[1].Raw))
	}
}

func testRoomOrder(t *testing.T, s chat.RoomStore) {
	as := authors(t, 3)
	// Stored in an order unlike room order: ties on the clock are broken by
	// author, then seq.
	ms := []chat.RoomMessage{
		rm("lobby", as[2], 1, 5, "c1@5"),
		rm("lobby", as[0], 2, 9, "a2@9"),
		rm("lobby", as[1], 1, 5, "b1@5"),
		rm("lobby", as[0], 1, 5, "a1@5"),
		rm("lobby", as[1], 2, 5, "b2@5"),
		rm("lobby", as[2], 2, 1, "c2@1"), // a clock that went back
		rm("elsewhere", as[0], 3, 0, "not in lobby"),
	}
	add(t, s, ms...)
	got := list(t, s, chat.RoomFilter{Room: "lobby"})
	wantTexts(t, "room order", got, "c2@1", "a1@5", "b1@5", "b2@5", "c1@5", "a2@9")
	if !slices.IsSortedFunc(got, chat.RoomOrder) {
		t.Errorf("RoomMessages is not in chat.RoomOrder: %q", textsOf(got))
	}
}

// testOrderByClock: room order is the clock's, whatever sent_at says; the
// last N and the first N are by clock too.
func testOrderByClock(t *testing.T, s chat.RoomStore) {
	as := authors(t, 3)
	fast := rm("lobby", as[2], 1, 1, "fast: a day ahead")
	fast.SentAt = fast.SentAt.Add(24 * time.Hour)
	fast.Clock = fast.SentAt.UnixMilli()
	reply := rm("lobby", as[0], 1, 2, "reply, from a clock a day behind the fast one")
	reply.Clock = fast.Clock + 1
	after := rm("lobby", as[1], 1, 3, "after the reply")
	after.Clock = reply.Clock + 1
	before := rm("lobby", as[1], 2, 4, "sent_at after all of them, clock before")
	before.SentAt = fast.SentAt.Add(time.Hour)
	before.Clock = base.UnixMilli()
	add(t, s, after, reply, before, fast)
	wantTexts(t, "room order", list(t, s, chat.RoomFilter{Room: "lobby"}),
		before.Text, fast.Text, reply.Text, after.Text)
	wantTexts(t, "Limit 2", list(t, s, chat.RoomFilter{Room: "lobby", Limit: 2}), reply.Text, after.Text)
	wantTexts(t, "Limit 2 Oldest", list(t, s, chat.RoomFilter{Room: "lobby", Limit: 2, Oldest: true}), before.Text, fast.Text)
	// The highest clock held is the last message; with ClockAtMost, the
	// highest at most that (what Send follows).
	if last := list(t, s, chat.RoomFilter{Room: "lobby", Limit: 1}); len(last) != 1 || last[0].Clock != after.Clock {
		t.Errorf("last message %+v, want clock %d", last, after.Clock)
	}
	for _, tc := range []struct {
		atMost int64
		want   []string
	}{
		{reply.Clock, []string{reply.Text}}, {after.Clock - 1, []string{reply.Text}},
		{fast.Clock - 1, []string{before.Text}}, {before.Clock - 1, nil},
	} {
		wantTexts(t, fmt.Sprintf("ClockAtMost %d, Limit 1", tc.atMost),
			list(t, s, chat.RoomFilter{Room: "lobby", ClockAtMost: tc.atMost, Limit: 1}), tc.want...)
	}
	wantTexts(t, "ClockAtMost", list(t, s, chat.RoomFilter{Room: "lobby", ClockAtMost: reply.Clock}),
		before.Text, fast.Text, reply.Text)
	// ClockAtLeast keeps what a history request's since asks for, alone,
	// with Limit (the newest, for latest) and with Above.
	wantTexts(t, "ClockAtLeast", list(t, s, chat.RoomFilter{Room: "lobby", ClockAtLeast: fast.Clock}),
		fast.Text, reply.Text, after.Text)
	wantTexts(t, "ClockAtLeast, Limit 1 Oldest", list(t, s, chat.RoomFilter{Room: "lobby", ClockAtLeast: fast.Clock, Limit: 1, Oldest: true}),
		fast.Text)
	wantTexts(t, "ClockAtLeast with Above", list(t, s, chat.RoomFilter{Room: "lobby", ClockAtLeast: fast.Clock + 1,
		Above: map[peer.ID]uint64{after.Author: after.Seq}}), reply.Text)
	// The largest clock a message may carry is kept exactly.
	top := rm("other", as[0], 1, 5, "at the maximum")
	top.Clock = protocols.MaxRoomClock
	add(t, s, top)
	if got := list(t, s, chat.RoomFilter{Room: "other"}); len(got) != 1 || got[0].Clock != protocols.MaxRoomClock {
		t.Errorf("a message at MaxRoomClock read back as %+v", got)
	}
}

func testLimit(t *testing.T, s chat.RoomStore) {
	as := authors(t, 2)
	for i := range 10 {
		add(t, s, rm("lobby", as[i%2], uint64(i/2+1), 10-i%3+i, fmt.Sprint(i)))
	}
	all := list(t, s, chat.RoomFilter{Room: "lobby"})
	if len(all) != 10 {
		t.Fatalf("got %d messages, want 10", len(all))
	}
	for _, limit := range []int{1, 3, 10, 11} {
		want := textsOf(all[max(0, len(all)-limit):])
		wantTexts(t, fmt.Sprintf("Limit %d", limit), list(t, s, chat.RoomFilter{Room: "lobby", Limit: limit}), want...)
		want = textsOf(all[:min(len(all), limit)])
		wantTexts(t, fmt.Sprintf("Limit %d Oldest", limit),
			list(t, s, chat.RoomFilter{Room: "lobby", Limit: limit, Oldest: true}), want...)
	}
}

func testAbove(t *testing.T, s chat.RoomStore) {
	as := authors(t, 3)
	for seq := uint64(1); seq <= 3; seq++ {
		for i, a := range as {
			add(t, s, rm("lobby", a, seq, int(seq)*10+i, fmt.Sprintf("%c%d", 'a'+i, seq)))
		}
	}
	f := chat.RoomFilter{Room: "lobby", Above: map[peer.ID]uint64{as[0]: 2, as[1]: 0, as[2]: 3}}
	wantTexts(t, "Above", list(t, s, f), "b1", "b2", "a3", "b3")
	// Authors not in the map are all kept; Limit applies to what Above kept.
	f = chat.RoomFilter{Room: "lobby", Above: map[peer.ID]uint64{as[1]: 1}, Limit: 3}
	wantTexts(t, "Above with Limit", list(t, s, f), "a3", "b3", "c3")
	f.Oldest = true // what history answers with
	wantTexts(t, "Above with Limit and Oldest", list(t, s, f), "a1", "c1", "a2")
	f = chat.RoomFilter{Room: "lobby", Above: map[peer.ID]uint64{as[0]: 1 << 62, as[1]: 5, as[2]: 2}}
	wantTexts(t, "Above high-water marks", list(t, s, f), "c3")
	// Held leaves out the ranges a history requester holds above its
	// prefix, with or without Above for the author; Limit counts what is
	// left, from the oldest or the newest.
	for seq := uint64(4); seq <= 6; seq++ {
		for i, a := range as {
			add(t, s, rm("lobby", a, seq, int(seq)*10+i, fmt.Sprintf("%c%d", 'a'+i, seq)))
		}
	}
	f = chat.RoomFilter{Room: "lobby", Above: map[peer.ID]uint64{as[0]: 1, as[1]: 6},
		Held: map[peer.ID][]protocols.HistoryRange{as[0]: {{From: 3, To: 4}, {From: 6, To: 6}}, as[2]: {{From: 2, To: 5}}}}
	wantTexts(t, "Above and Held", list(t, s, f), "c1", "a2", "a5", "c6")
	f.Limit, f.Oldest = 3, true
	wantTexts(t, "Above and Held, the oldest 3", list(t, s, f), "c1", "a2", "a5")
	f.Oldest = false
	wantTexts(t, "Above and Held, the last 3", list(t, s, f), "a2", "a5", "c6")
	f = chat.RoomFilter{Room: "lobby", Held: map[peer.ID][]protocols.HistoryRange{as[0]: {{From: 1, To: 6}}, as[1]: {{From: 1, To: 5}}}, Signed: true}
	wantTexts(t, "Held alone", list(t, s, f), "c1", "c2", "c3", "c4", "c5", "b6", "c6")
}

func testSignedAndAfter(t *testing.T, s chat.RoomStore) {
	as := authors(t, 2)
	unsigned := rm("lobby", as[0], 2, 3, "ours, unpublished")
	unsigned.ID, unsigned.Raw = "", nil
	add(t, s, rm("lobby", as[0], 1, 1, "a1"), rm("lobby", as[1], 1, 2, "b1"), unsigned, rm("lobby", as[1], 2, 4, "b2"))
	wantTexts(t, "Signed", list(t, s, chat.RoomFilter{Room: "lobby", Signed: true}), "a1", "b1", "b2")
	// rm receives 1 ms after it was sent: After the receipt of b1 keeps
	// what came after it.
	after := base.Add(2*time.Second + time.Millisecond)
	wantTexts(t, "After", list(t, s, chat.RoomFilter{Room: "lobby", After: after}), "ours, unpublished", "b2")
	wantTexts(t, "After and Signed", list(t, s, chat.RoomFilter{Room: "lobby", After: after, Signed: true}), "b2")
}

func testSetSigned(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	a := authors(t, 1)[0]
	own := rm("lobby", a, 1, 1, "mine")
	own.ID, own.Raw = "", nil
	add(t, s, own)
	const id = "0123456789abcdef0123456789abcdef"
	if err := s.SetRoomMessageSigned(ctx, "lobby", a, 1, id, []byte("signed")); err != nil {
		t.Fatalf("SetRoomMessageSigned: %v", err)
	}
	// Recording it again is not an error, and the first record stays.
	if err := s.SetRoomMessageSigned(ctx, "lobby", a, 1, "ffffffffffffffffffffffffffffffff", []byte("other")); err != nil {
		t.Errorf("SetRoomMessageSigned again: %v", err)
	}
	ms := list(t, s, chat.RoomFilter{Room: "lobby", Signed: true})
	if len(ms) != 1 || ms[0].ID != id || string(ms[0].Raw) != "signed" || ms[0].Text != "mine" {
		t.Errorf("after SetRoomMessageSigned: %+v", ms)
	}
}

func testUnpublished(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	as := authors(t, 2)
	me := as[0]
	var mine []chat.RoomMessage
	for seq := uint64(1); seq <= 4; seq++ {
		m := rm("lobby", me, seq, int(10-seq), fmt.Sprintf("mine %d", seq)) // clock going back: by seq still
		if seq != 2 {
			m.ID, m.Raw = "", nil
		}
		mine = append(mine, m)
	}
	unsignedOther := rm("lobby", as[1], 1, 1, "theirs")
	unsignedOther.Raw = nil
	unsignedElsewhere := rm("elsewhere", me, 1, 1, "elsewhere")
	unsignedElsewhere.Raw = nil
	add(t, s, mine[3], mine[0], mine[2], mine[1], unsignedOther, unsignedElsewhere)
	got, err := s.Unpublished(ctx, "lobby", me)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "Unpublished", got, "mine 1", "mine 3", "mine 4")
	if err := s.SetRoomMessageSigned(ctx, "lobby", me, 3, "0123456789abcdef0123456789abcdef", []byte("signed")); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Unpublished(ctx, "lobby", me)
	wantTexts(t, "Unpublished after publishing seq 3", got, "mine 1", "mine 4")
	if got, _ := s.Unpublished(ctx, "nowhere", me); len(got) != 0 {
		t.Errorf("Unpublished of an unknown room: %+v", got)
	}
}

func testHighWater(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	as := authors(t, 3)
	add(t, s, rm("lobby", as[0], 5, 1, "a5"), rm("lobby", as[0], 2, 2, "a2"), rm("lobby", as[1], 1, 3, "b1"),
		rm("elsewhere", as[2], 9, 4, "c9"))
	for _, tt := range []struct {
		room   string
		author peer.ID
		want   uint64
	}{{"lobby", as[0], 5}, {"lobby", as[1], 1}, {"lobby", as[2], 0}, {"elsewhere", as[2], 9}, {"nowhere", as[0], 0}} {
		if hw, err := s.HighWater(ctx, tt.room, tt.author); hw != tt.want || err != nil {
			t.Errorf("HighWater(%s, %s) = %d, %v; want %d", tt.room, tt.author, hw, err, tt.want)
		}
	}
	hws, err := s.HighWaters(ctx, "lobby")
	if err != nil || len(hws) != 2 || hws[as[0]] != 5 || hws[as[1]] != 1 {
		t.Errorf("HighWaters(lobby) = %v, %v; want %s:5 %s:1", hws, err, as[0], as[1])
	}
	if hws, err := s.HighWaters(ctx, "nowhere"); err != nil || len(hws) != 0 {
		t.Errorf("HighWaters(nowhere) = %v, %v; want empty", hws, err)
	}
}

func testRoomGaps(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	as := authors(t, 3)
	for _, seq := range []uint64{9, 1, 2, 5, 6} {
		add(t, s, rm("lobby", as[1], seq, int(seq), fmt.Sprint(seq)))
	}
	add(t, s, rm("lobby", as[0], 3, 1, "a3"), rm("lobby", as[2], 1, 1, "c1"), rm("lobby", as[2], 2, 2, "c2"),
		rm("elsewhere", as[2], 4, 1, "elsewhere"))
	gaps, err := s.RoomGaps(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}
	want := []chat.Gap{{Author: as[0], From: 1, To: 2}, {Author: as[1], From: 3, To: 4}, {Author: as[1], From: 7, To: 8}}
	if !slices.Equal(gaps, want) {
		t.Errorf("RoomGaps(lobby) = %+v, want %+v", gaps, want)
	}
	if gaps, err := s.RoomGaps(ctx, "nowhere"); err != nil || len(gaps) != 0 {
		t.Errorf("RoomGaps(nowhere) = %+v, %v; want none", gaps, err)
	}
}

// testFloor: a room's floor is 0 until set, is kept per room, outlives the
// room, and a floor below 1 is refused.
func testFloor(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	if f, err := s.RoomFloor(ctx, "lobby"); err != nil || f != 0 {
		t.Fatalf("floor before any is set: %d, %v; want 0", f, err)
	}
	if err := s.SetRoomFloor(ctx, "lobby", 0); err == nil {
		t.Error("a floor of 0 was accepted")
	}
	for _, c := range []int64{1_795_000_000_000, 1_795_000_000_500} {
		if err := s.SetRoomFloor(ctx, "lobby", c); err != nil {
			t.Fatal(err)
		}
		if f, err := s.RoomFloor(ctx, "lobby"); err != nil || f != c {
			t.Fatalf("floor %d, %v; want %d", f, err, c)
		}
	}
	if f, err := s.RoomFloor(ctx, "other"); err != nil || f != 0 {
		t.Errorf("another room's floor: %d, %v; want 0", f, err)
	}
	if err := s.SaveRoom(ctx, chat.Room{Name: "lobby", Topic: protocols.OpenRoomTopicPrefix + "lobby", JoinedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if f, err := s.RoomFloor(ctx, "lobby"); err != nil || f != 1_795_000_000_500 {
		t.Errorf("floor after the room was left: %d, %v; want it kept", f, err)
	}
}

// testJoining: a room is not joining until marked, is kept per room, is
// marked once however often, ends when unmarked, and outlives the room.
func testJoining(t *testing.T, s chat.RoomStore) {
	ctx := t.Context()
	is := func(room string, want bool, when string) {
		t.Helper()
		if got, err := s.RoomJoining(ctx, room); err != nil || got != want {
			t.Fatalf("%s joining %s: %v, %v; want %v", room, when, got, err, want)
		}
	}
	is("lobby", false, "before any mark")
	for range 2 {
		if err := s.SetRoomJoining(ctx, "lobby", true); err != nil {
			t.Fatal(err)
		}
	}
	is("lobby", true, "once marked (twice)")
	is("other", false, "when another room is marked")
	if err := s.SaveRoom(ctx, chat.Room{Name: "lobby", Topic: protocols.OpenRoomTopicPrefix + "lobby", JoinedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	is("lobby", true, "after the room was left")
	for range 2 {
		if err := s.SetRoomJoining(ctx, "lobby", false); err != nil {
			t.Fatal(err)
		}
	}
	is("lobby", false, "once unmarked (twice)")
}
