package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

func TestLoadShowsConversations(t *testing.T) {
	h := start(t, newFake(), Options{})
	if got, want := h.m.convs.order, []string{roomKey("general"), dmKey(anaID), dmKey(benID)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sidebar order %v, want %v (blocked mallory left out)", got, want)
	}
	if h.m.sel != roomKey("general") {
		t.Fatalf("selected %q, want the first room", h.m.sel)
	}
	v := h.view()
	for _, want := range []string{"Rooms", "#general", "Direct", "@ana", "@" + termtext.ShortID(benID), "09:00 ana: welcome", "public", "2 peers"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	h.key("tab")
	h.key("tab")
	if v := h.view(); !strings.Contains(v, "08:00 "+termtext.ShortID(benID)+": hello from ben") || !strings.Contains(v, termtext.ShortID(benID)+": relayed via "+termtext.ShortID(eveID)) {
		t.Fatalf("ben's DM: want his message under his short ID and the relayed path:\n%s", v)
	}
}

func TestSwitchConversations(t *testing.T) {
	h := start(t, newFake(), Options{})
	for _, step := range []struct{ key, want string }{
		{"tab", dmKey(anaID)}, {"ctrl+n", dmKey(benID)}, {"tab", roomKey("general")},
		{"shift+tab", dmKey(benID)}, {"ctrl+p", dmKey(anaID)},
	} {
		h.key(step.key)
		if h.m.sel != step.want {
			t.Fatalf("after %s: selected %q, want %q", step.key, h.m.sel, step.want)
		}
	}
	if !strings.Contains(h.view(), "ana: direct") {
		t.Fatalf("status line should say ana is reached directly:\n%s", h.view())
	}
}

func TestUnreadCounts(t *testing.T) {
	h := start(t, newFake(), Options{})
	msg := node.RoomMessageInfo{ID: "o1", Room: "ops", From: anaID, Name: "ana", Text: "deploy?", SentAt: time.Now()}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindJoined, Room: "ops"})
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "ops", RoomMessage: &msg})
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "ops", RoomMessage: &msg}) // a duplicate
	mine := node.RoomMessageInfo{ID: "o2", Room: "ops", From: meID, Mine: true, Text: "from my other terminal", SentAt: time.Now()}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "ops", RoomMessage: &mine})
	dm := node.MessageInfo{ID: "d2", Seq: 2, From: anaID, To: meID, Name: "ana", Text: "psst", SentAt: time.Now(), State: "received"}
	h.event(node.Event{Type: node.EventMessage, Message: &dm})
	dm.State = "received" // the same message again (a state event): not new
	h.event(node.Event{Type: node.EventMessage, Message: &dm})
	inView := node.RoomMessageInfo{ID: "g2", Room: "general", From: anaID, Text: "seen", SentAt: time.Now()}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &inView})

	if got := h.sidebarLine("#ops"); got != "#ops 1" {
		t.Errorf("sidebar shows %q, want one unread in #ops (duplicate and our own not counted)", got)
	}
	if got := h.sidebarLine("@ana"); got != "@ana 1" {
		t.Errorf("sidebar shows %q, want one unread DM from ana", got)
	}
	if got := h.sidebarLine("#general"); got != "› #general" {
		t.Errorf("sidebar shows %q, want no unread count for the room in view", got)
	}
	h.key("tab") // #ops
	if h.m.sel != roomKey("ops") || h.sidebarLine("#ops") != "› #ops" {
		t.Fatalf("selecting #ops should clear its count: %q", h.sidebarLine("#ops"))
	}
	if v := h.view(); !strings.Contains(v, "ana: deploy?") || !strings.Contains(v, "me: from my other terminal") || strings.Count(v, "deploy?") != 1 {
		t.Fatalf("#ops should show each message once:\n%s", v)
	}
}

func TestSendMessages(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{})
	h.enter("hello room")
	if !f.called(`SendRoom general "hello room"`) {
		t.Fatalf("calls: %s", f.callList())
	}
	if v := h.view(); !strings.Contains(v, "me: hello room") {
		t.Fatalf("own message not shown:\n%s", v)
	}
	h.key("tab") // @ana
	h.enter("//slash is text")
	if !f.called(`Send ` + anaID + ` "/slash is text"`) {
		t.Fatalf("calls: %s", f.callList())
	}
	if h.m.input.Value() != "" {
		t.Fatalf("input not cleared: %q", h.m.input.Value())
	}
}

func TestSendFailureKeepsText(t *testing.T) {
	f := newFake()
	f.sendErr = errors.New("room: not joined")
	h := start(t, f, Options{})
	h.enter("important words")
	if got := h.m.input.Value(); got != "important words" {
		t.Fatalf("input after a failed send: %q, want the text back", got)
	}
	if !strings.Contains(h.view(), "! send to #general: room: not joined") {
		t.Fatalf("no error shown:\n%s", h.view())
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(file, []byte("pdf"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	h := start(t, f, Options{})

	h.enter("/join ops")
	if !f.called("JoinRoom ops private=false") || h.m.sel != roomKey("ops") {
		t.Fatalf("/join ops: calls %s, selected %q", f.callList(), h.m.sel)
	}
	h.enter("/join vault --secret-file " + secretFile)
	if !f.called("JoinRoom vault private=true") || string(f.secrets["vault"]) != "correct horse" {
		t.Fatalf("/join --secret-file: calls %s, secret %q", f.callList(), f.secrets["vault"])
	}
	if !strings.Contains(h.view(), "private room") {
		t.Fatalf("a private room should say so:\n%s", h.view())
	}
	h.enter("/leave")
	if !f.called("LeaveRoom vault") || h.m.convs.get(roomKey("vault")) != nil {
		t.Fatalf("/leave: calls %s", f.callList())
	}
	h.enter("/msg ANA hi there")
	if !f.called(`Send `+anaID+` "hi there"`) || h.m.sel != dmKey(anaID) {
		t.Fatalf("/msg: calls %s, selected %q", f.callList(), h.m.sel)
	}
	h.enter("/send " + file)
	if !f.called("SendFiles " + anaID + " [" + file + "]") {
		t.Fatalf("/send: calls %s", f.callList())
	}
	h.enter("/msg " + benID)
	if h.m.sel != dmKey(benID) {
		t.Fatalf("/msg by peer ID selected %q", h.m.sel)
	}
	h.enter("/msg nobody")
	if !strings.Contains(h.m.notice, "nobody is not a contact or a peer ID") {
		t.Fatalf("/msg nobody: notice %q", h.m.notice)
	}
	h.enter("/join general") // switch to a room, where /send refuses
	h.enter("/send " + file)
	if !strings.Contains(h.m.notice, "files go to one peer") {
		t.Fatalf("/send in a room: notice %q", h.m.notice)
	}
	h.enter("/accept")
	if !strings.Contains(h.m.notice, "no offer is waiting") {
		t.Fatalf("/accept without an offer: notice %q", h.m.notice)
	}
	h.enter("/frobnicate")
	if !strings.Contains(h.m.notice, "unknown command /frobnicate") {
		t.Fatalf("unknown command: notice %q", h.m.notice)
	}
	h.enter("/help")
	if !strings.Contains(h.view(), "/join NAME --secret-file F") {
		t.Fatalf("/help:\n%s", h.view())
	}
	h.key("esc")
	if h.m.view != viewChat {
		t.Fatal("esc should go back to the chat")
	}
	h.enter("/quit")
	if !h.quit {
		t.Fatal("/quit did not quit")
	}
}

func TestSecretNeverEchoed(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{})
	h.enter("/join vault --secret hunter2")
	if f.called("JoinRoom vault private=true") || strings.Contains(h.view(), "hunter2") || h.m.input.Value() != "" {
		t.Fatalf("a secret typed on the line must be refused and not shown: calls %s\n%s", f.callList(), h.view())
	}
	if !strings.Contains(h.m.notice, "never typed on the command line") {
		t.Fatalf("notice %q", h.m.notice)
	}

	// A secret too short for a room is refused before the daemon sees it,
	// by the same rule as the kith room commands, and not shown.
	h.enter("/join vault --secret")
	h.typ("hunter2")
	h.key("enter")
	if f.called("JoinRoom vault private=true") || strings.Contains(h.view(), "hunter2") ||
		!strings.Contains(h.m.notice, "the secret from the prompt is 7 bytes; a room secret is 8 to 1024") {
		t.Fatalf("a 7-byte secret: calls %s, notice %q", f.callList(), h.m.notice)
	}

	h.enter("/join vault --secret")
	h.typ("hunter22")
	v := h.view()
	if strings.Contains(v, "hunter22") || !strings.Contains(v, "secret for #vault: ••••••••") {
		t.Fatalf("the prompt must mask the secret:\n%s", v)
	}
	h.key("enter")
	if !f.called("JoinRoom vault private=true") || string(f.secrets["vault"]) != "hunter22" {
		t.Fatalf("calls %s, secret %q", f.callList(), f.secrets["vault"])
	}
	if h.m.secret != nil || strings.Contains(h.view(), "•••") {
		t.Fatal("the prompt should be gone")
	}
}

func offer(id, name string) node.TransferInfo {
	return node.TransferInfo{ID: id, Peer: anaID, PeerName: "ana", Direction: "in", State: "offered", Files: 1, Bytes: 2 << 20, Names: []string{name}, Dir: "/home/me/Downloads"}
}

// The daemon's offer event names no files (they are named on accept): the
// popup looks the offer up and says what it holds before it is answered.
func TestOfferPopupNamesWhatIsOffered(t *testing.T) {
	f := newFake()
	f.entries = map[string][]node.EntryInfo{"dddd4444": {
		{Path: "photos", Dir: true}, {Path: "photos/a.jpg", Size: 1 << 20}, {Path: "photos/b.jpg", Size: 1 << 20},
		{Path: "notes\x1b[2J.txt", Size: 10},
	}}
	h := start(t, f, Options{})
	tr := node.TransferInfo{ID: "dddd4444", Peer: benID, Direction: "in", State: "offered", Files: 3, Bytes: 2<<20 + 10}
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferOffer, Transfer: &tr})
	if !f.called("Transfer dddd4444") {
		t.Fatalf("the offer was not looked up: calls %s", f.callList())
	}
	v := h.view()
	for _, want := range []string{"offers photos, notes\\x1b[2J.txt", "3 files, 2.0 MiB", "into /home/me/Downloads"} {
		if !strings.Contains(v, want) {
			t.Fatalf("popup lacks %q:\n%s", want, v)
		}
	}
	// A later event without names keeps them.
	tr.Notified = true
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferState, Transfer: &tr})
	if v := h.view(); !strings.Contains(v, "offers photos, notes") {
		t.Fatalf("names lost after another event:\n%s", v)
	}
}

func TestOfferPopup(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{})
	t1, t2 := offer("aaaa1111", "report.pdf"), offer("bbbb2222", "photo.jpg")
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferOffer, Transfer: &t1})
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferOffer, Transfer: &t2})
	v := h.view()
	for _, want := range []string{"Incoming files", "ana offers report.pdf", "1 file, 2.0 MiB", "[a] accept", "1 more waiting"} {
		if !strings.Contains(v, want) {
			t.Fatalf("popup lacks %q:\n%s", want, v)
		}
	}
	h.typ("x") // other keys are ignored while it shows
	if h.m.input.Value() != "" {
		t.Fatalf("typing went through the popup: %q", h.m.input.Value())
	}
	h.key("a")
	if !f.called(`AcceptTransfer aaaa1111 dir="" overwrite=false`) {
		t.Fatalf("a: calls %s", f.callList())
	}
	if len(h.m.offers) != 1 || h.m.offers[0] != "bbbb2222" {
		t.Fatalf("offers left %v, want the second", h.m.offers)
	}
	// The second pops up with the next offer event, or waits for /reject.
	if strings.Contains(h.view(), "Incoming files") {
		t.Fatal("the popup should close after an answer")
	}
	if !strings.Contains(h.view(), "1 offer waiting (/accept, /reject)") {
		t.Fatalf("status should say an offer waits:\n%s", h.view())
	}
	h.enter("/reject")
	if !f.called("RejectTransfer bbbb2222") || len(h.m.offers) != 0 {
		t.Fatalf("/reject: calls %s, offers %v", f.callList(), h.m.offers)
	}

	t3 := offer("cccc3333", "notes.txt")
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferOffer, Transfer: &t3})
	h.key("esc")
	if strings.Contains(h.view(), "Incoming files") || len(h.m.offers) != 1 {
		t.Fatal("esc should put the offer off, keeping it")
	}
	t3.State = "active" // answered elsewhere (kith transfers accept)
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferState, Transfer: &t3})
	if len(h.m.offers) != 0 {
		t.Fatalf("an offer answered elsewhere still waits: %v", h.m.offers)
	}
}

func TestTransfersProgress(t *testing.T) {
	h := start(t, newFake(), Options{})
	tr := node.TransferInfo{ID: "dddd4444", Peer: anaID, PeerName: "ana", Direction: "out", State: "active", Path: "direct", Files: 1, Bytes: 1000, Names: []string{"big.iso"}, CreatedAt: time.Now()}
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferState, Transfer: &tr})
	h.enter("/transfers")
	tr.DoneBytes, tr.Rate = 450, 2048
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferProgress, Transfer: &tr})
	v := h.view()
	for _, want := range []string{"Transfers", "↑ big.iso to ana", "active · direct", " 45%", "450 B / 1000 B", "2.0 KiB/s"} {
		if !strings.Contains(v, want) {
			t.Fatalf("transfers view lacks %q:\n%s", want, v)
		}
	}
	if bar := ansi.Strip(v); !strings.Contains(bar, "█") || !strings.Contains(bar, "░") {
		t.Fatalf("no progress bar:\n%s", v)
	}
	tr.DoneBytes, tr.State = 1000, "done"
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferState, Transfer: &tr})
	if v := h.view(); !strings.Contains(v, "100%") || !strings.Contains(v, "big.iso to ana: done") {
		t.Fatalf("done not shown:\n%s", v)
	}
	h.key("ctrl+t")
	if h.m.view != viewChat {
		t.Fatal("ctrl+t should toggle back")
	}
}

func TestHostileTextEscaped(t *testing.T) {
	const hostile = "hi\x1b[2J\x1b[H\x1b]52;c;cm0gLXJmIH4=\x07\u009b31m\u202eevil\r\x08!"
	f := newFake()
	f.contacts = append(f.contacts, node.ContactInfo{Name: "bad\x1b[31mname", PeerID: benID})
	h := start(t, f, Options{})
	h.send(teaSize(240, 30)) // no wrapping inside the escapes
	msg := node.RoomMessageInfo{ID: "h1", Room: "general", From: benID, Name: "bad\x1b[31mname", Text: hostile + "\nline two\x1b[1A", SentAt: time.Now()}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &msg})
	v := h.view()
	tr := offer("eeee5555", "x\x1b]52;c;ZXZpbA==\x07.txt")
	h.event(node.Event{Type: node.EventTransfer, Kind: node.TransferOffer, Transfer: &tr})
	v += h.view()
	f.sendErr = errors.New("peer said \x1b[2J")
	h.key("esc")
	h.enter("x")
	v += h.view()
	for _, bad := range []string{"\x1b", "\u009b", "\x07", "\u202e", "\r", "\x08"} {
		if strings.Contains(v, bad) {
			t.Fatalf("view carries %q from a peer:\n%q", bad, v)
		}
	}
	for _, want := range []string{`hi\x1b[2J\x1b[H\x1b]52;c;cm0gLXJmIH4=\a\u009b31m\u202eevil\r\b!`, "line two\\x1b[1A", `bad\x1b[31mname`, `x\x1b]52;c;ZXZpbA==\a.txt`, `peer said \x1b[2J`} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks the escaped %q:\n%s", want, v)
		}
	}
}

func TestResize(t *testing.T) {
	h := start(t, newFake(), Options{})
	long := node.RoomMessageInfo{ID: "l1", Room: "general", From: anaID, Name: "ana", Text: strings.Repeat("wrap me please ", 30), SentAt: time.Now()}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &long})
	for _, size := range [][2]int{{100, 30}, {60, 15}, {45, 10}, {200, 50}, {12, 4}} {
		h.send(teaSize(size[0], size[1]))
		lines := strings.Split(h.view(), "\n")
		if len(lines) != size[1] {
			t.Fatalf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for i, l := range lines {
			if w := ansi.StringWidth(l); w != size[0] {
				t.Fatalf("%dx%d: line %d is %d wide: %q", size[0], size[1], i, w, l)
			}
		}
	}
}

func TestOpenRoomAtStart(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{Room: "standup"})
	if !f.called("JoinRoom standup private=false") || h.m.sel != roomKey("standup") {
		t.Fatalf("calls %s, selected %q", f.callList(), h.m.sel)
	}
	f2 := newFake()
	h2 := start(t, f2, Options{Room: "general"})
	if f2.called("JoinRoom general private=false") || h2.m.sel != roomKey("general") {
		t.Fatalf("a room we are in is opened, not joined again: calls %s, selected %q", f2.callList(), h2.m.sel)
	}
	// kith chat general --secret-file F: the node is asked, so that a wrong
	// secret (or a room that is open) is said, not silently ignored; the
	// secret is wiped once sent.
	f3 := newFake()
	secret := []byte("a long enough secret")
	h3 := start(t, f3, Options{Room: "general", Secret: secret})
	if !f3.called("JoinRoom general private=true") || h3.m.sel != roomKey("general") {
		t.Fatalf("a room we are in, given a secret: calls %s, selected %q", f3.callList(), h3.m.sel)
	}
	if string(f3.secrets["general"]) != "a long enough secret" || strings.Trim(string(secret), "\x00") != "" {
		t.Fatalf("the node got %q; the caller's copy is now %q (want it wiped)", f3.secrets["general"], secret)
	}
}

func TestRoomsUnavailable(t *testing.T) {
	f := newFake()
	f.roomsErr = errors.New("api: 404 Not Found")
	h := start(t, f, Options{})
	if h.m.sel != dmKey(anaID) || !strings.Contains(h.m.notice, "rooms: api: 404") {
		t.Fatalf("DMs should still work when rooms fail: selected %q, notice %q", h.m.sel, h.m.notice)
	}
}

func TestEventsBeforeLoad(t *testing.T) {
	f := newFake()
	m := New(t.Context(), f, Options{})
	t.Cleanup(m.Close)
	h := &harness{t: t, m: m}
	dm := node.MessageInfo{ID: "early", Seq: 5, From: anaID, To: meID, Text: "early bird", SentAt: time.Now(), State: "received"}
	h.send(eventMsg{node.Event{Type: node.EventMessage, Message: &dm}})
	h.send(streamReadyMsg{})
	c := h.m.convs.get(dmKey(anaID))
	if c == nil || len(c.entries) != 1 || c.entries[0].text != "early bird" || c.unread != 1 {
		t.Fatalf("an event before the load must be kept and counted: %+v", c)
	}
}

func teaSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

func TestRoomsJoinedAndLeftElsewhere(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{})
	// Joined with kith room join in another terminal: the room shows with
	// what it holds.
	f.logs["ops"] = []node.RoomMessageInfo{{ID: "o0", Room: "ops", From: anaID, Name: "ana", Text: "older", SentAt: at(7, 0)}}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindJoined, Room: "ops"})
	h.key("tab")
	if h.m.sel != roomKey("ops") || !strings.Contains(h.view(), "07:00 ana: older") {
		t.Fatalf("a room joined elsewhere should show its log:\n%s", h.view())
	}
	// A refresh answered before that join does not undo it.
	h.send(refreshedMsg{status: f.status, rooms: []node.RoomInfo{{Name: "general"}}, roomsOK: true})
	if h.m.convs.get(roomKey("ops")) == nil {
		t.Fatal("a refresh dropped a room")
	}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindLeft, Room: "ops"})
	if h.m.convs.get(roomKey("ops")) != nil || h.m.sel == roomKey("ops") || h.m.sel == "" {
		t.Fatalf("left elsewhere: the room should go and another be selected (selected %q)", h.m.sel)
	}
}

// Help wraps under its description column, not back at the margin.
func TestHelpWrapsUnderItsColumn(t *testing.T) {
	got := hangWrap("  /join NAME --secret      join a private room, asking for the secret (hidden)\nshort", 60)
	want := "  /join NAME --secret      join a private room, asking for\n" +
		strings.Repeat(" ", 27) + "the secret (hidden)\nshort"
	if got != want {
		t.Fatalf("hangWrap:\n%s\nwant:\n%s", got, want)
	}
	// Too narrow for two columns: the description goes under its line.
	got = hangWrap("  /join NAME --secret      join a private room, asking for the secret (hidden)", 30)
	want = "  /join NAME --secret\n      join a private room,\n      asking for the secret\n      (hidden)"
	if got != want {
		t.Fatalf("hangWrap narrow:\n%s\nwant:\n%s", got, want)
	}
	h := start(t, newFake(), Options{})
	h.send(teaSize(70, 40))
	h.enter("/help")
	for _, l := range strings.Split(h.view(), "\n") {
		_, text, _ := strings.Cut(l, "│")
		if text = strings.TrimRight(text, " "); text != "" && !strings.HasPrefix(text, "  ") &&
			!slices.Contains([]string{"Keys", "Commands", "Help  (esc: back)"}, text) {
			t.Errorf("a help line restarts at the margin: %q", l)
		}
	}
}

// Our own room message may show before it is published (no ID yet: a
// listing during the send, or a publish that failed and is retried after a
// restart) and again with its ID: it is one message, known by author and
// seq, and keeps its place in room order.
func TestOwnRoomMessageShownOnce(t *testing.T) {
	h := start(t, newFake(), Options{})
	sent := at(10, 0)
	unpublished := node.RoomMessageInfo{Room: "general", From: meID, Mine: true, Seq: 1, Text: "deploying now", SentAt: sent}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &unpublished})
	published := unpublished
	published.ID = "r-deploy"
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &published})
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &unpublished})
	// Same millisecond, another author: room order puts the lower peer ID
	// (of real IDs' one length) first, then seq.
	same := node.RoomMessageInfo{ID: "r-ana", Room: "general", From: anaID[:len(meID)], Name: "ana", Seq: 7, Text: "ok", SentAt: sent}
	h.event(node.Event{Type: node.EventRoom, Kind: node.RoomKindMessage, Room: "general", RoomMessage: &same})
	c := h.m.convs.get(roomKey("general"))
	var got []string
	for _, e := range c.entries {
		got = append(got, e.id+":"+e.text)
	}
	if want := "g1:welcome,r-ana:ok,r-deploy:deploying now"; strings.Join(got, ",") != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
	if v := h.view(); strings.Count(v, "deploying now") != 1 {
		t.Fatalf("our message shows %d times:\n%s", strings.Count(v, "deploying now"), v)
	}
}

// A conversation keeps its maxLines newest messages; one older than all of
// them is not kept, nor counted unread.
func TestConversationCapped(t *testing.T) {
	c := &conv{room: "big"}
	base := at(0, 0)
	for i := range maxLines + 10 {
		c.add(entry{id: fmt.Sprint(i), from: anaID, rseq: uint64(i + 1), at: base.Add(time.Duration(i) * time.Second)})
	}
	if len(c.entries) != maxLines || c.entries[0].rseq != 11 || len(c.ids) != maxLines {
		t.Fatalf("%d entries (first seq %d, %d indexed), want the %d newest", len(c.entries), c.entries[0].rseq, len(c.ids), maxLines)
	}
	if c.add(entry{id: "old", from: anaID, rseq: 1000000, at: base.Add(-time.Hour)}) {
		t.Fatal("a message older than every kept one was reported new")
	}
}

// A room shows its messages by clock (the room's order on every member),
// not by the time each author's clock stated: an answer from a colleague
// whose clock is a day behind comes after the question it answers, as it
// arrives; an entry from a node that sends no clock is placed by its time.
func TestRoomOrderByClock(t *testing.T) {
	c := &conv{room: "lobby"}
	base := at(0, 0)
	ms := base.UnixMilli()
	c.add(entry{id: "q", from: anaID, rseq: 1, at: base.Add(24 * time.Hour), clock: ms + 86400_000})
	c.add(entry{id: "a", from: meID, rseq: 1, at: base, clock: ms + 86400_001})
	c.add(entry{id: "early", from: meID, rseq: 2, at: base.Add(-time.Hour)}) // no clock: its time's
	var got []string
	for _, e := range c.entries {
		got = append(got, e.id)
	}
	if want := []string{"early", "q", "a"}; !slices.Equal(got, want) {
		t.Errorf("room shows %v, want %v", got, want)
	}
}

// When the daemon goes away the UI says so once, and says it is back when
// the stream returns and the lists load again, instead of keeping a stale
// error.
func TestStreamDownAndBack(t *testing.T) {
	f := newFake()
	h := start(t, f, Options{})
	h.send(streamDownMsg{errors.New("dial unix kith.sock: connect: connection refused")})
	if !h.m.isError || !strings.Contains(h.m.notice, "reconnecting") || !strings.Contains(h.view(), "connecting…") {
		t.Fatalf("stream down: notice %q, view:\n%s", h.m.notice, h.view())
	}
	f.mu.Lock()
	f.logs["general"] = append(f.logs["general"], node.RoomMessageInfo{ID: "g2", Room: "general", From: anaID, Name: "ana", Seq: 2, Text: "said while you were away", SentAt: at(9, 5)})
	f.mu.Unlock()
	h.send(streamReadyMsg{})
	if h.m.isError || h.m.notice != "reconnected to the node" || strings.Contains(h.view(), "connecting…") {
		t.Fatalf("stream back: notice %q (error %v)", h.m.notice, h.m.isError)
	}
	if v := h.view(); !strings.Contains(v, "said while you were away") {
		t.Fatalf("what was said meanwhile is not shown:\n%s", v)
	}
}
