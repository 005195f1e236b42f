package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/kithnet/kith/cmd/kith/internal/roomsecret"
	"github.com/kithnet/kith/node"
)

// callTimeout bounds a backend call; sendTimeout a send, which waits for the
// peer's ack or the outbox.
const (
	callTimeout = 30 * time.Second
	sendTimeout = 2 * time.Minute
)

// call runs f as a command with a bounded context. f must not touch the
// model: it runs on another goroutine.
func (m *Model) call(timeout time.Duration, f func(ctx context.Context) tea.Msg) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return f(ctx)
	}
}

// loadedMsg is everything the lists say.
type loadedMsg struct {
	id        node.Identity
	status    node.Status
	contacts  []node.ContactInfo
	dms       []node.MessageInfo
	rooms     []node.RoomInfo
	roomsOK   bool
	logs      map[string][]node.RoomMessageInfo
	transfers []node.TransferInfo
	err       error // the first list that failed
}

// load reads every list. Events that arrive meanwhile are merged (by ID), so
// nothing is lost or shown twice.
func (m *Model) load() tea.Cmd {
	if m.loading {
		return nil
	}
	m.loading = true
	b, history := m.b, m.opts.History
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		var l loadedMsg
		var errs []error
		keep := func(what string, err error) bool {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, describe(err)))
			}
			return err == nil
		}
		var err error
		l.id, err = b.Identity(ctx)
		keep("identity", err)
		l.status, err = b.Status(ctx)
		keep("status", err)
		l.contacts, err = b.Contacts(ctx)
		keep("contacts", err)
		l.dms, err = b.Messages(ctx, "", 0)
		keep("messages", err)
		l.transfers, err = b.Transfers(ctx)
		keep("transfers", err)
		l.rooms, err = b.Rooms(ctx)
		l.roomsOK = keep("rooms", err)
		if !l.roomsOK {
			l.rooms = nil
		}
		l.logs = map[string][]node.RoomMessageInfo{}
		for _, r := range l.rooms {
			msgs, err := b.RoomMessages(ctx, r.Name, history)
			if keep("room "+r.Name, err) {
				l.logs[r.Name] = msgs
			}
		}
		if len(errs) > 0 {
			l.err = errs[0]
		}
		return l
	})
}

func (m *Model) loadedMsg(l loadedMsg) tea.Cmd {
	m.loading = false
	first := !m.loaded
	if l.id.PeerID != "" {
		m.me = l.id.PeerID
	}
	if l.status.PeerID != "" {
		m.status = l.status
	}
	if l.contacts != nil {
		m.setContacts(l.contacts)
	}
	for _, msg := range l.dms {
		m.addDM(msg, false)
	}
	if l.roomsOK {
		m.setRooms(l.rooms, true)
	}
	for _, msgs := range l.logs {
		for _, msg := range msgs {
			m.addRoomMsg(msg, false)
		}
	}
	var cmds []tea.Cmd
	for _, t := range l.transfers {
		cmds = append(cmds, m.transfer(node.TransferState, t))
	}
	m.loaded = true
	for _, ev := range m.pending {
		cmds = append(cmds, m.event(ev))
	}
	m.pending = nil
	switch {
	case l.err != nil:
		m.fail("%v", l.err)
	case m.down:
		m.down = false
		m.say("reconnected to the node")
	}
	if !m.roomOpened && m.opts.Room != "" {
		m.roomOpened = true
		// With a secret the room is joined even when we are in it: the node
		// says whether the secret is the room's (or the room was open), and
		// the secret is wiped after.
		secret := m.opts.Secret
		m.opts.Secret = nil
		if m.convs.get(roomKey(m.opts.Room)) != nil && secret == nil {
			m.selectConv(roomKey(m.opts.Room))
		} else {
			cmds = append(cmds, m.join(m.opts.Room, secret))
		}
	}
	if m.sel == "" || m.convs.get(m.sel) == nil {
		m.selectConv(m.convs.step("", 0))
	}
	if first {
		cmds = append(cmds, m.tick())
	}
	m.dirty = true
	return tea.Batch(cmds...)
}

func (m *Model) setContacts(cs []node.ContactInfo) {
	clear(m.contacts)
	for _, c := range cs {
		if !c.Blocked {
			m.contacts[c.PeerID] = c
			m.convs.dm(c.PeerID, c.Name)
		}
	}
}

// setRooms updates the sidebar's rooms from what the node says we are in,
// and returns the commands loading the logs of rooms new to it. With sync
// (a full load, when events may have been missed) it also drops the rooms
// the node is no longer in; otherwise only left events drop a room, since
// a refresh may have been answered before a join it would undo.
func (m *Model) setRooms(rooms []node.RoomInfo, sync bool) tea.Cmd {
	in := map[string]bool{}
	var cmds []tea.Cmd
	for _, r := range rooms {
		in[r.Name] = true
		if m.convs.get(roomKey(r.Name)) == nil && !sync {
			cmds = append(cmds, m.roomLog(r.Name))
		}
		c := m.convs.room(r.Name)
		c.private, c.members = r.Private, r.Members
	}
	for _, key := range slices.Clone(m.convs.order) {
		if c := m.convs.get(key); sync && c.room != "" && !in[c.room] {
			m.dropRoom(c.room)
		}
	}
	m.dirty = true
	return tea.Batch(cmds...)
}

type (
	tickMsg      struct{}
	refreshedMsg struct {
		status  node.Status
		rooms   []node.RoomInfo
		roomsOK bool
	}
)

// tick schedules the next status refresh.
func (m *Model) tick() tea.Cmd {
	if m.opts.StatusEvery <= 0 {
		return nil
	}
	return tea.Tick(m.opts.StatusEvery, func(time.Time) tea.Msg { return tickMsg{} })
}

// refresh reads status and rooms: paths change (a relayed connection
// upgrades to direct) and members come and go without an event.
func (m *Model) refresh() tea.Cmd {
	b := m.b
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		var r refreshedMsg
		r.status, _ = b.Status(ctx)
		var err error
		r.rooms, err = b.Rooms(ctx)
		r.roomsOK = err == nil
		return r
	})
}

func (m *Model) refreshed(r refreshedMsg) tea.Cmd {
	if r.status.PeerID != "" {
		m.status = r.status
	}
	if r.roomsOK {
		return m.setRooms(r.rooms, false)
	}
	return nil
}

// ReadSecretFile reads the secret file of kith chat --secret-file and
// /join NAME --secret-file F: the same reader, and so the same key, as the
// kith room commands; "-" is refused, as standard input is the terminal.
func ReadSecretFile(path string) ([]byte, error) {
	return roomsecret.ReadFile(path, nil)
}
