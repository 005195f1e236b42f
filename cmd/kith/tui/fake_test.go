package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/kithnet/kith/node"
	"github.com/muesli/termenv"
)

func TestMain(m *testing.M) {
	// Plain output: the assertions read text, and a stray escape sequence
	// in a view can only come from a peer's text.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// Peer IDs of the fake network.
const (
	meID  = "12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe"
	anaID = "12D3KooWAnaAnaAnaAnaAnaAnaAnaAnaAnaAnaAnaAnaAnaAnaAna"
	benID = "12D3KooWBenBenBenBenBenBenBenBenBenBenBenBenBenBenBen"
	eveID = "12D3KooWEveEveEveEveEveEveEveEveEveEveEveEveEveEveEve"
)

// fakeBackend is a node as the API shows it, in memory. It records every
// call that changes something.
type fakeBackend struct {
	mu        sync.Mutex
	status    node.Status
	contacts  []node.ContactInfo
	dms       []node.MessageInfo
	rooms     []node.RoomInfo
	logs      map[string][]node.RoomMessageInfo
	transfers []node.TransferInfo
	entries   map[string][]node.EntryInfo // Transfer's entries, by ID
	roomsErr  error
	sendErr   error
	calls     []string
	secrets   map[string][]byte // JoinRoom's secret, copied, by room
	seq       int
	events    chan node.Event
	panics    bool // Events panics
}

func newFake() *fakeBackend {
	return &fakeBackend{
		status: node.Status{PeerID: meID, Reachability: "public", Peers: []node.PeerStatus{
			{PeerID: anaID, Name: "ana", Path: node.PathDirect},
			{PeerID: benID, Path: node.PathRelayed, Relay: eveID},
		}},
		contacts: []node.ContactInfo{{Name: "ana", PeerID: anaID}, {Name: "mallory", PeerID: eveID, Blocked: true}},
		rooms:    []node.RoomInfo{{Name: "general", Members: 2}},
		logs: map[string][]node.RoomMessageInfo{"general": {
			{ID: "g1", Room: "general", From: anaID, Name: "ana", Text: "welcome", SentAt: at(9, 0)},
		}},
		dms: []node.MessageInfo{
			{ID: "d1", Seq: 1, From: benID, To: meID, Text: "hello from ben", SentAt: at(8, 0), State: "received"},
		},
		secrets: map[string][]byte{},
		events:  make(chan node.Event, 16),
	}
}

func at(h, m int) time.Time {
	y, mo, d := time.Now().Date()
	return time.Date(y, mo, d, h, m, 0, 0, time.Local)
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// called reports whether the call was made.
func (f *fakeBackend) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, call)
}

func (f *fakeBackend) callList() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func (f *fakeBackend) Identity(context.Context) (node.Identity, error) {
	return node.Identity{PeerID: meID}, nil
}

func (f *fakeBackend) Status(context.Context) (node.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeBackend) Contacts(context.Context) ([]node.ContactInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.contacts), nil
}

func (f *fakeBackend) Messages(_ context.Context, from string, after int64) ([]node.MessageInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dms), nil
}

func (f *fakeBackend) Send(_ context.Context, peer, text string) (node.MessageInfo, error) {
	f.record("Send %s %q", peer, text)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return node.MessageInfo{}, f.sendErr
	}
	f.seq++
	return node.MessageInfo{ID: fmt.Sprintf("s%d", f.seq), Seq: int64(100 + f.seq), From: meID, To: peer, Text: text, SentAt: time.Now(), State: "delivered"}, nil
}

func (f *fakeBackend) Rooms(context.Context) ([]node.RoomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rooms), f.roomsErr
}

func (f *fakeBackend) JoinRoom(_ context.Context, name string, secret []byte) (node.RoomInfo, error) {
	f.record("JoinRoom %s private=%v", name, secret != nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[name] = slices.Clone(secret)
	r := node.RoomInfo{Name: name, Private: secret != nil}
	f.rooms = append(f.rooms, r)
	return r, nil
}

func (f *fakeBackend) LeaveRoom(_ context.Context, name string) error {
	f.record("LeaveRoom %s", name)
	return nil
}

func (f *fakeBackend) SendRoom(_ context.Context, room, text string) (node.RoomMessageInfo, error) {
	f.record("SendRoom %s %q", room, text)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return node.RoomMessageInfo{}, f.sendErr
	}
	f.seq++
	return node.RoomMessageInfo{ID: fmt.Sprintf("r%d", f.seq), Room: room, From: meID, Mine: true, Text: text, SentAt: time.Now()}, nil
}

func (f *fakeBackend) RoomMessages(_ context.Context, room string, limit int) ([]node.RoomMessageInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logs[room]), nil
}

func (f *fakeBackend) Transfers(context.Context) ([]node.TransferInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.transfers), nil
}

func (f *fakeBackend) Transfer(_ context.Context, id string) (node.TransferInfo, error) {
	f.record("Transfer %s", id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries[id] == nil {
		return node.TransferInfo{}, errors.New("fake: no such transfer")
	}
	return node.TransferInfo{ID: id, Direction: "in", State: "offered", Dir: "/home/me/Downloads", Entries: f.entries[id]}, nil
}

func (f *fakeBackend) AcceptTransfer(_ context.Context, id, dir string, overwrite bool) (node.TransferInfo, error) {
	f.record("AcceptTransfer %s dir=%q overwrite=%v", id, dir, overwrite)
	return node.TransferInfo{ID: id, Direction: "in", State: "active", Files: 1, Names: []string{"report.pdf"}, Dir: "/tmp/dl"}, nil
}

func (f *fakeBackend) RejectTransfer(_ context.Context, id string) (node.TransferInfo, error) {
	f.record("RejectTransfer %s", id)
	return node.TransferInfo{ID: id, Direction: "in", State: "rejected", Files: 1}, nil
}

func (f *fakeBackend) SendFiles(_ context.Context, to string, paths []string) (node.TransferInfo, error) {
	f.record("SendFiles %s %v", to, paths)
	return node.TransferInfo{ID: "out1", Peer: to, Direction: "out", State: "offered", Files: 1, Names: []string{"x"}}, nil
}

func (f *fakeBackend) Events(ctx context.Context, ready func(), fn func(node.Event) error) error {
	if f.panics {
		panic("fake: the event stream broke")
	}
	ready()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-f.events:
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// harness drives a Model without a program: each message's commands run
// at once, their results fed back, as bubbletea would.
type harness struct {
	t    *testing.T
	m    *Model
	quit bool
}

// start loads the model over f as if the event stream just came up.
func start(t *testing.T, f *fakeBackend, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, m: New(t.Context(), f, opts)}
	t.Cleanup(h.m.Close)
	h.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	h.send(streamReadyMsg{})
	return h
}

func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

func (h *harness) run(cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		cmd, queue = queue[0], queue[1:]
		if cmd == nil {
			continue
		}
		switch msg := cmd().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			h.quit = true
		default:
			_, next := h.m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// typ types text and presses Enter.
func (h *harness) enter(text string) {
	h.t.Helper()
	h.typ(text)
	h.send(tea.KeyMsg{Type: tea.KeyEnter})
}

func (h *harness) typ(text string) {
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text)})
}

func (h *harness) key(k string) {
	h.t.Helper()
	types := map[string]tea.KeyType{
		"tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab, "ctrl+n": tea.KeyCtrlN, "ctrl+p": tea.KeyCtrlP,
		"esc": tea.KeyEsc, "enter": tea.KeyEnter, "ctrl+t": tea.KeyCtrlT,
	}
	if kt, ok := types[k]; ok {
		h.send(tea.KeyMsg{Type: kt})
		return
	}
	h.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
}

func (h *harness) event(ev node.Event) { h.send(eventMsg{ev}) }

func (h *harness) view() string { return h.m.View() }

// sidebarLine returns the sidebar's line naming label.
func (h *harness) sidebarLine(label string) string {
	for _, l := range strings.Split(h.view(), "\n") {
		side := l
		if i := strings.Index(side, "│"); i >= 0 {
			side = side[:i]
		}
		if strings.Contains(side, label) {
			return strings.Join(strings.Fields(side), " ")
		}
	}
	return ""
}
