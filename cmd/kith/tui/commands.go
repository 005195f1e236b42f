package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
)

// Results of backend calls.
type (
	errMsg struct {
		what    string
		err     error
		restore string // text to give back to the input line
	}
	sentMsg struct {
		dm   *node.MessageInfo
		room *node.RoomMessageInfo
	}
	joinedMsg  struct{ info node.RoomInfo }
	leftMsg    struct{ room string }
	roomLogMsg struct {
		room string
		msgs []node.RoomMessageInfo
	}
	transferResultMsg struct {
		t    node.TransferInfo
		note string
	}
)

// command runs a slash command.
func (m *Model) command(line string) tea.Cmd {
	name, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	rest = strings.TrimSpace(rest)
	switch name {
	case "/join":
		return m.joinCommand(rest)
	case "/leave":
		return m.leaveCommand(rest)
	case "/msg":
		return m.msgCommand(rest)
	case "/send":
		return m.sendCommand(rest)
	case "/accept", "/reject":
		id, err := m.offer(rest)
		if err != nil {
			m.fail("%s: %v", name, err)
			return nil
		}
		if name == "/accept" {
			return m.accept(id)
		}
		return m.reject(id)
	case "/transfers":
		m.toggle(viewTransfers)
	case "/help":
		m.toggle(viewHelp)
	case "/quit", "/exit":
		return tea.Quit
	default:
		m.fail("unknown command %s: /help lists them", name)
	}
	return nil
}

const joinUsage = "/join NAME, /join NAME --secret-file F, or /join NAME --secret (asks for it, hidden); a secret is never typed on the command line"

func (m *Model) joinCommand(rest string) tea.Cmd {
	room, opt, _ := strings.Cut(rest, " ")
	opt = strings.TrimSpace(opt)
	flag, arg, _ := strings.Cut(opt, " ")
	arg = strings.TrimSpace(arg)
	switch {
	case room == "" || strings.HasPrefix(room, "-"):
		m.fail("usage: %s", joinUsage)
	case opt == "":
		return m.join(room, nil)
	case flag == "--secret-file" && arg != "":
		read := m.opts.ReadSecret
		return m.call(callTimeout, func(ctx context.Context) tea.Msg {
			path, err := expandHome(unquote(arg))
			if err != nil {
				return errMsg{what: "/join " + room, err: err}
			}
			secret, err := read(path)
			if err != nil {
				return errMsg{what: "/join " + room, err: err}
			}
			return m.joinCall(ctx, room, secret)
		})
	case opt == "--secret":
		return m.askSecret(room)
	default:
		// Whatever else was typed may be a secret: never echo it.
		m.fail("/join: usage: %s", joinUsage)
	}
	return nil
}

// join joins room (open when secret is nil) and opens it. The secret is
// wiped once sent.
func (m *Model) join(room string, secret []byte) tea.Cmd {
	return m.call(callTimeout, func(ctx context.Context) tea.Msg { return m.joinCall(ctx, room, secret) })
}

// joinCall runs on a command's goroutine: it uses only the backend.
func (m *Model) joinCall(ctx context.Context, room string, secret []byte) tea.Msg {
	defer clear(secret)
	info, err := m.b.JoinRoom(ctx, room, secret)
	if err != nil {
		return errMsg{what: "/join " + room, err: err}
	}
	return joinedMsg{info}
}

func (m *Model) roomLog(room string) tea.Cmd {
	b, limit := m.b, m.opts.History
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		msgs, err := b.RoomMessages(ctx, room, limit)
		if err != nil {
			return errMsg{what: "#" + room, err: err}
		}
		return roomLogMsg{room, msgs}
	})
}

func (m *Model) leaveCommand(rest string) tea.Cmd {
	room := rest
	if room == "" {
		c := m.current()
		if c == nil || c.room == "" {
			m.fail("/leave: not in a room (/leave NAME leaves another)")
			return nil
		}
		room = c.room
	}
	b := m.b
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		if err := b.LeaveRoom(ctx, room); err != nil {
			return errMsg{what: "/leave " + room, err: err}
		}
		return leftMsg{room}
	})
}

func (m *Model) msgCommand(rest string) tea.Cmd {
	who, text, _ := strings.Cut(rest, " ")
	if who == "" {
		m.fail("usage: /msg PEER [TEXT] (PEER: a contact name or peer ID)")
		return nil
	}
	peer, err := m.resolve(who)
	if err != nil {
		m.fail("/msg: %v", err)
		return nil
	}
	c := m.convs.dm(peer, m.contactName(peer, ""))
	m.selectConv(c.key())
	if text = strings.TrimSpace(text); text != "" {
		return m.sendDM(peer, text)
	}
	return nil
}

// resolve finds a peer by contact name, conversation label or peer ID.
func (m *Model) resolve(who string) (string, error) {
	who = strings.TrimPrefix(who, "@")
	for _, exact := range []bool{true, false} {
		for id, c := range m.contacts {
			if c.Name == who || !exact && strings.EqualFold(c.Name, who) {
				return id, nil
			}
		}
	}
	if looksLikePeerID(who) {
		return who, nil
	}
	return "", fmt.Errorf("%s is not a contact or a peer ID (save it first: kith contacts add NAME TICKET)", termtext.Escape(who))
}

// looksLikePeerID accepts the base58 forms of libp2p peer IDs; the node
// checks properly.
func looksLikePeerID(s string) bool {
	if len(s) < 46 || len(s) > 64 || !(strings.HasPrefix(s, "12D3KooW") || strings.HasPrefix(s, "Qm")) {
		return false
	}
	const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	return !strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(b58, r) })
}

func (m *Model) sendDM(peer, text string) tea.Cmd {
	b := m.b
	return m.call(sendTimeout, func(ctx context.Context) tea.Msg {
		msg, err := b.Send(ctx, peer, text)
		if err != nil {
			return errMsg{what: "send", err: err, restore: text}
		}
		return sentMsg{dm: &msg}
	})
}

func (m *Model) sendRoom(room, text string) tea.Cmd {
	b := m.b
	return m.call(sendTimeout, func(ctx context.Context) tea.Msg {
		msg, err := b.SendRoom(ctx, room, text)
		if err != nil {
			return errMsg{what: "send to #" + room, err: err, restore: text}
		}
		return sentMsg{room: &msg}
	})
}

func (m *Model) sendCommand(rest string) tea.Cmd {
	c := m.current()
	if c == nil || c.peer == "" {
		m.fail("/send: files go to one peer: open a DM with /msg PEER first")
		return nil
	}
	path, err := absPath(unquote(rest))
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		m.fail("/send: %v", err)
		return nil
	}
	b, peer := m.b, c.peer
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		t, err := b.SendFiles(ctx, peer, []string{path})
		if err != nil {
			return errMsg{what: "/send", err: err}
		}
		return transferResultMsg{t, "offered " + transferLabel(t) + "; /transfers shows its progress"}
	})
}

// offer picks the incoming offer an /accept or /reject answers: the one
// popping up (the oldest), or the one whose ID starts with prefix.
func (m *Model) offer(prefix string) (string, error) {
	if len(m.offers) == 0 {
		return "", errors.New("no offer is waiting")
	}
	if prefix == "" {
		return m.offers[0], nil
	}
	i := slices.IndexFunc(m.offers, func(id string) bool { return strings.HasPrefix(id, prefix) })
	if i < 0 {
		return "", fmt.Errorf("no waiting offer has an ID starting with %s", termtext.Escape(prefix))
	}
	return m.offers[i], nil
}

func (m *Model) accept(id string) tea.Cmd {
	m.popup = false
	b := m.b
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		t, err := b.AcceptTransfer(ctx, id, "", false)
		if err != nil {
			return errMsg{what: "accept", err: err}
		}
		return transferResultMsg{t, "accepted " + transferLabel(t) + " into " + t.Dir}
	})
}

func (m *Model) reject(id string) tea.Cmd {
	m.popup = false
	b := m.b
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		t, err := b.RejectTransfer(ctx, id)
		if err != nil {
			return errMsg{what: "reject", err: err}
		}
		return transferResultMsg{t, "rejected " + transferLabel(t)}
	})
}

// result applies the result of a backend call.
func (m *Model) result(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case errMsg:
		m.fail("%s: %v", msg.what, describe(msg.err))
		if msg.restore != "" && m.input.Value() == "" {
			m.input.SetValue(msg.restore)
		}
	case sentMsg:
		if msg.dm != nil {
			m.addDM(*msg.dm, false)
			if msg.dm.State == "queued" {
				m.say("queued: the peer is not reachable now; the daemon delivers it when they are back")
			}
		}
		if msg.room != nil {
			m.addRoomMsg(*msg.room, false)
		}
		m.follow = true
	case joinedMsg:
		c := m.convs.room(msg.info.Name)
		c.private, c.members = msg.info.Private, msg.info.Members
		m.selectConv(c.key())
		m.say("joined #%s", msg.info.Name)
		return m.roomLog(msg.info.Name)
	case leftMsg:
		m.dropRoom(msg.room)
		m.say("left #%s", msg.room)
	case roomLogMsg:
		for _, rm := range msg.msgs {
			m.addRoomMsg(rm, false)
		}
	case transferResultMsg:
		m.say("%s", msg.note)
		return m.transfer(node.TransferState, msg.t)
	case offerDetailsMsg:
		m.offerDetailed(msg.t)
	}
	return nil
}

// describe says what an API error means when its text would not.
func describe(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "" {
		return fmt.Errorf("the node's API does not serve this call (a daemon older than this kith? restart it): %w", err)
	}
	return err
}

// transferLabel names what a transfer moves and with whom (not escaped).
func transferLabel(t node.TransferInfo) string {
	what := plural(t.Files, "file")
	switch {
	case len(t.Names) == 1:
		what = t.Names[0]
	case len(t.Names) > 1:
		what = fmt.Sprintf("%s and %d more", t.Names[0], len(t.Names)-1)
	}
	who := t.PeerName
	if who == "" {
		who = termtext.ShortID(t.Peer)
	}
	if who == "" {
		return what
	}
	if t.Direction == "in" {
		return what + " from " + who
	}
	return what + " to " + who
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// absPath expands a leading ~ and makes path absolute, as the API wants.
func absPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("usage: /send PATH")
	}
	path, err := expandHome(path)
	if err != nil {
		return "", err
	}
	return filepath.Abs(path)
}

// expandHome expands a leading ~, as a shell would have.
func expandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, path[1:]), nil
}
