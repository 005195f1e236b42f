package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/kithnet/kith/cmd/kith/internal/roomsecret"
	"github.com/kithnet/kith/cmd/kith/internal/termtext"
)

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if k.Type == tea.KeyCtrlC {
		return tea.Quit
	}
	if m.secret != nil {
		return m.secretKey(k)
	}
	if m.popup && len(m.offers) > 0 {
		return m.popupKey(k)
	}
	switch k.String() {
	case "tab", "ctrl+n":
		m.selectConv(m.convs.step(m.sel, 1))
	case "shift+tab", "ctrl+p":
		m.selectConv(m.convs.step(m.sel, -1))
	case "pgup":
		m.vp.PageUp()
		m.follow = false
	case "pgdown":
		m.vp.PageDown()
		m.follow = m.vp.AtBottom()
	case "up":
		m.vp.ScrollUp(1)
		m.follow = false
	case "down":
		m.vp.ScrollDown(1)
		m.follow = m.vp.AtBottom()
	case "ctrl+t":
		m.toggle(viewTransfers)
	case "esc":
		if m.view != viewChat {
			m.toggle(m.view)
		} else {
			m.notice = ""
		}
	case "enter":
		return m.submit()
	default:
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(k)
		return cmd
	}
	return nil
}

// toggle shows v, or the chat again when v shows.
func (m *Model) toggle(v view) {
	if m.view == v {
		m.selectConv(m.sel)
		return
	}
	m.view = v
	m.dirty = true
	m.vp.GotoTop()
}

// popupKey answers the offer that pops up: a (or y) accepts, r (or n)
// rejects, esc puts it off (/accept and /reject still answer it). The popup
// is modal: other keys are ignored while it shows.
func (m *Model) popupKey(k tea.KeyMsg) tea.Cmd {
	switch k.String() {
	case "a", "y":
		return m.accept(m.offers[0])
	case "r", "n":
		return m.reject(m.offers[0])
	case "esc":
		m.popup = false
		m.say("offer put off: /accept or /reject answers it")
	}
	return nil
}

// secretKey drives the masked prompt for a private room's secret.
func (m *Model) secretKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyEsc:
		m.secret.in.Reset()
		m.secret = nil
		m.say("join cancelled")
		return nil
	case tea.KeyEnter:
		p := m.secret
		m.secret = nil
		secret := []byte(p.in.Value())
		p.in.Reset()
		if _, err := roomsecret.Check(secret, "the prompt"); err != nil {
			m.fail("/join %s: %v; nothing joined", p.room, err)
			return nil
		}
		return m.join(p.room, secret)
	}
	var cmd tea.Cmd
	m.secret.in, cmd = m.secret.in.Update(k)
	return cmd
}

func (m *Model) askSecret(room string) tea.Cmd {
	in := newInput("secret for #"+termtext.Escape(room)+": ", textinput.EchoPassword)
	in.Width = max(10, m.width-len(in.Prompt)-2)
	m.secret = &secretPrompt{room: room, in: in}
	return m.secret.in.Focus()
}

// submit sends the input line: a command, or a message to the conversation
// in view ("//" sends a text that starts with "/").
func (m *Model) submit() tea.Cmd {
	text := m.input.Value()
	m.input.Reset()
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		return m.command(text)
	}
	text = strings.TrimPrefix(text, "/")
	c := m.current()
	switch {
	case c == nil:
		m.input.SetValue(text)
		m.fail("no conversation: /join ROOM or /msg PEER first")
		return nil
	case c.room != "":
		return m.sendRoom(c.room, text)
	default:
		return m.sendDM(c.peer, text)
	}
}
