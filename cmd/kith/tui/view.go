package tui

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// Styles. Everything a peer wrote is escaped by clean before a style
// touches it.
var (
	stSideTitle = lipgloss.NewStyle().Bold(true).Faint(true)
	stSelected  = lipgloss.NewStyle().Reverse(true)
	stUnread    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("3"))
	stHeader    = lipgloss.NewStyle().Bold(true)
	stTime      = lipgloss.NewStyle().Faint(true)
	stMe        = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("6"))
	stAuthor    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("5"))
	stFaint     = lipgloss.NewStyle().Faint(true)
	stError     = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	stStatus    = lipgloss.NewStyle().Reverse(true)
	stPopup     = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	stSep       = lipgloss.NewStyle().Faint(true)
)

// Rows under the main pane: notice, input, status.
const footerRows = 3

func (m *Model) sideWidth() int {
	if m.width < 50 {
		return 0
	}
	return min(28, max(16, m.width/4))
}

func (m *Model) mainWidth() int {
	if w := m.sideWidth(); w > 0 {
		return max(1, m.width-w-1)
	}
	return max(1, m.width)
}

func (m *Model) bodyHeight() int { return max(2, m.height-footerRows) }

// layout sizes the parts after a resize.
func (m *Model) layout() {
	m.vp.Width = m.mainWidth()
	m.vp.Height = m.bodyHeight() - 1
	m.input.Width = max(1, m.width-ansi.StringWidth(m.input.Prompt)-1)
	if m.secret != nil {
		m.secret.in.Width = max(1, m.width-ansi.StringWidth(m.secret.in.Prompt)-1)
	}
	m.dirty = true
}

// View draws the screen: exactly height lines, none wider than width, so
// the terminal never wraps or scrolls.
func (m *Model) View() string {
	side := m.sidebar()
	main := m.mainPane()
	var body string
	if side != "" {
		sep := stSep.Render(strings.Repeat("│\n", m.bodyHeight()-1) + "│")
		body = lipgloss.JoinHorizontal(lipgloss.Top, side, sep, main)
	} else {
		body = main
	}
	in := m.input.View()
	if m.secret != nil {
		in = m.secret.in.View()
	}
	lines := strings.Split(body, "\n")
	lines = append(lines, m.noticeLine(), fit(in, m.width), m.statusLine())
	// A terminal too short for everything keeps the input and status lines.
	return strings.Join(lines[max(0, len(lines)-m.height):], "\n")
}

// box renders s into exactly w×h cells.
func box(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = fit(l, w)
	}
	return strings.Join(lines, "\n")
}

// fit truncates or pads one line to w cells.
func fit(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	if n := ansi.StringWidth(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

func (m *Model) sidebar() string {
	w := m.sideWidth()
	if w == 0 {
		return ""
	}
	var b strings.Builder
	lastRoom := -1
	for _, key := range m.convs.order {
		c := m.convs.get(key)
		isRoom := 0
		if c.room != "" {
			isRoom = 1
		}
		if isRoom != lastRoom {
			lastRoom = isRoom
			b.WriteString(stSideTitle.Render(map[int]string{1: "Rooms", 0: "Direct"}[isRoom]) + "\n")
		}
		b.WriteString(m.sideEntry(c, w) + "\n")
	}
	if len(m.convs.order) == 0 {
		b.WriteString(stFaint.Render("no conversations:\n/join ROOM\n/msg PEER"))
	}
	return box(strings.TrimSuffix(b.String(), "\n"), w, m.bodyHeight())
}

func (m *Model) sideEntry(c *conv, w int) string {
	count := ""
	if c.unread > 0 {
		count = fmt.Sprintf(" %d", c.unread)
	}
	mark := "  "
	if c.key() == m.sel {
		mark = "› "
	}
	label := ansi.Truncate(termtext.Escape(c.label()), max(1, w-len(mark)-len(count)), "…")
	pad := max(0, w-len(mark)-ansi.StringWidth(label)-len(count))
	line := mark + label + strings.Repeat(" ", pad)
	if c.key() == m.sel {
		line = stSelected.Render(line)
	}
	return line + stUnread.Render(count)
}

func (m *Model) mainPane() string {
	w, h := m.mainWidth(), m.bodyHeight()
	if m.popup && len(m.offers) > 0 {
		return fit(stHeader.Render("Incoming files"), w) + "\n" +
			box(lipgloss.Place(w, h-1, lipgloss.Center, lipgloss.Center, m.offerBox(w)), w, h-1)
	}
	return fit(m.header(), w) + "\n" + box(m.vp.View(), w, h-1)
}

func (m *Model) header() string {
	switch m.view {
	case viewTransfers:
		return stHeader.Render("Transfers") + stFaint.Render("  (esc: back)")
	case viewHelp:
		return stHeader.Render("Help") + stFaint.Render("  (esc: back)")
	}
	c := m.current()
	switch {
	case c == nil:
		return stHeader.Render("kith chat")
	case c.room != "":
		kind := "open room"
		if c.private {
			kind = "private room"
		}
		head := stHeader.Render(termtext.Escape(c.label())) + stFaint.Render("  "+kind+" · "+plural(c.members, "member")+" seen")
		if n := c.missing.count(); n > 0 {
			head += stError.Render(" · " + plural(n, "message") + " missing, asking members")
		}
		return head
	}
	return stHeader.Render(termtext.Escape(c.label())) + stFaint.Render("  "+termtext.Escape(c.peer))
}

// render lays the main pane's content into the viewport.
func (m *Model) render() {
	m.dirty = false
	w := m.vp.Width
	switch m.view {
	case viewTransfers:
		m.vp.SetContent(m.transfersText(w))
		return
	case viewHelp:
		m.vp.SetContent(hangWrap(helpText, max(1, w)))
		return
	}
	c := m.current()
	if c == nil {
		m.vp.SetContent(stFaint.Render("Join a room with /join NAME, or open a DM with /msg PEER. /help lists everything."))
		return
	}
	m.vp.SetContent(m.messagesText(c, w))
	if m.follow {
		m.vp.GotoBottom()
	}
}

func (m *Model) messagesText(c *conv, w int) string {
	if len(c.entries) == 0 {
		return stFaint.Render("no messages yet")
	}
	now := m.now()
	var b strings.Builder
	lastDay := ""
	for _, e := range c.entries {
		if day := e.at.Local().Format("Mon Jan 2 2006"); day != lastDay {
			lastDay = day
			b.WriteString(stFaint.Render("── "+day+" ──") + "\n")
		}
		b.WriteString(m.entryText(e, w, now) + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// entryText is one message: time, author, text; long lines wrap under the
// text.
func (m *Model) entryText(e entry, w int, now time.Time) string {
	author := stAuthor.Render(termtext.Escape(m.author(e)))
	if e.mine {
		author = stMe.Render("me")
	}
	prefix := stTime.Render(clock(e.at, now)) + " " + author + ": "
	indent := min(ansi.StringWidth(prefix), w/2)
	var out []string
	for i, line := range termtext.Lines(e.text) {
		first := prefix
		if i > 0 {
			first = strings.Repeat(" ", indent)
		}
		wrapped := ansi.Wrap(line, max(1, w-indent), " -")
		for j, part := range strings.Split(wrapped, "\n") {
			lead := first
			if j > 0 {
				lead = strings.Repeat(" ", indent)
			}
			out = append(out, lead+part)
		}
	}
	if e.mine && e.state == "queued" {
		out[len(out)-1] += stFaint.Render(" (queued)")
	}
	return strings.Join(out, "\n")
}

// author names a message's author: contact name, else a short peer ID.
func (m *Model) author(e entry) string {
	switch {
	case e.mine:
		return "me"
	case e.name != "":
		return e.name
	}
	return m.contactName(e.from, termtext.ShortID(e.from))
}

func (m *Model) offerBox(w int) string {
	t := m.transfers[m.offers[0]]
	who := t.PeerName
	if who == "" {
		who = termtext.ShortID(t.Peer)
	}
	names := strings.Join(t.Names, ", ")
	if names == "" {
		names = plural(t.Files, "file")
	}
	inner := min(60, max(10, w-4))
	text := termtext.Escape(who) + " offers " + termtext.Escape(names) + "\n" +
		stFaint.Render(plural(t.Files, "file")+", "+termtext.Bytes(t.Bytes)) + "\n"
	if t.Dir != "" {
		text += stFaint.Render("into "+termtext.Escape(t.Dir)) + "\n"
	}
	text += "\n[a] accept   [r] reject   [esc] later"
	if n := len(m.offers) - 1; n > 0 {
		text += stFaint.Render(fmt.Sprintf("\n%d more waiting", n))
	}
	return stPopup.Width(inner).Render(text)
}

// transfersText lists transfers, newest first, with a progress bar each.
func (m *Model) transfersText(w int) string {
	ts := make([]node.TransferInfo, 0, len(m.transfers))
	for _, t := range m.transfers {
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return stFaint.Render("no transfers")
	}
	slices.SortFunc(ts, func(a, b node.TransferInfo) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	bar := progress.New(progress.WithSolidFill("4"), progress.WithoutPercentage(), progress.WithWidth(max(10, min(40, w-30))))
	var b strings.Builder
	for _, t := range ts {
		arrow := "↑"
		if t.Direction == "in" {
			arrow = "↓"
		}
		state := t.State
		if t.Path != "" {
			state += " · " + t.Path
		}
		if t.Error != "" {
			state += " · " + t.Error
		}
		b.WriteString(arrow + " " + termtext.Escape(transferLabel(t)) + stFaint.Render("  "+termtext.Escape(state)+"  "+t.ID[:min(8, len(t.ID))]) + "\n")
		pct := 0.0
		if t.Bytes > 0 {
			pct = float64(t.DoneBytes) / float64(t.Bytes)
		} else if t.State == "done" {
			pct = 1
		}
		line := fmt.Sprintf("  %s %3.0f%%  %s / %s", bar.ViewAs(pct), 100*pct, termtext.Bytes(t.DoneBytes), termtext.Bytes(t.Bytes))
		if t.Rate > 0 && t.State == "active" {
			line += "  " + termtext.Bytes(int64(t.Rate)) + "/s"
		}
		b.WriteString(line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (m *Model) noticeLine() string {
	if m.notice == "" {
		return fit("", m.width)
	}
	if m.isError {
		return fit(stError.Render("! "+m.notice), m.width)
	}
	return fit(stFaint.Render(m.notice), m.width)
}

// setNotice sets the notice line; its text is escaped here, since errors
// may quote what peers sent.
func (m *Model) setNotice(isError bool, format string, args ...any) {
	m.notice, m.isError = termtext.Escape(fmt.Sprintf(format, args...)), isError
}

func (m *Model) statusLine() string {
	parts := []string{}
	if !m.live {
		parts = append(parts, "connecting…")
	}
	parts = append(parts, cmp.Or(m.status.Reachability, "unknown"), plural(len(m.status.Peers), "peer"))
	if c := m.current(); c != nil && c.peer != "" {
		parts = append(parts, termtext.Escape(strings.TrimPrefix(c.label(), "@"))+": "+m.pathOf(c.peer))
	}
	if n := len(m.offers); n > 0 && !m.popup {
		parts = append(parts, plural(n, "offer")+" waiting (/accept, /reject)")
	}
	left := " " + strings.Join(parts, " · ")
	right := "Tab: next · /help "
	if pad := m.width - ansi.StringWidth(left) - ansi.StringWidth(right); pad > 0 {
		left += strings.Repeat(" ", pad) + right
	}
	return stStatus.Render(fit(left, m.width))
}

// pathOf says how we reach peer now: direct, relayed (via which relay), or
// not connected.
func (m *Model) pathOf(peer string) string {
	i := slices.IndexFunc(m.status.Peers, func(p node.PeerStatus) bool { return p.PeerID == peer })
	if i < 0 {
		return "not connected"
	}
	p := m.status.Peers[i]
	if p.Path == node.PathRelayed && p.Relay != "" {
		return "relayed via " + termtext.ShortID(p.Relay)
	}
	return cmp.Or(p.Path, "connected")
}

func plural[N int | uint64](n N, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// helpColumn finds where a help line's description starts: after the
// first gap of two spaces or more that follows its text.
var helpColumn = regexp.MustCompile(`^ *\S.*?  +`)

// hangWrap wraps each line of a two-column text to w columns, going on
// under the description's column, so the table still reads as one; in a
// pane too narrow for that, the description goes under its line, indented.
func hangWrap(s string, w int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		loc := helpColumn.FindStringIndex(line)
		if ansi.StringWidth(line) <= w || loc == nil || w < 16 {
			out = append(out, ansi.Wrap(line, w, " "))
			continue
		}
		col, head := loc[1], line[:loc[1]]
		if col > w/2 {
			out = append(out, ansi.Wrap(strings.TrimRight(head, " "), w, " "))
			col, head = 6, strings.Repeat(" ", 6)
		}
		for i, p := range strings.Split(ansi.Wrap(line[loc[1]:], w-col, " "), "\n") {
			if i > 0 {
				head = strings.Repeat(" ", col)
			}
			out = append(out, head+p)
		}
	}
	return strings.Join(out, "\n")
}

const helpText = `Keys
  Enter              send the line (a message, or a /command)
  Tab, Ctrl-N        next conversation
  Shift-Tab, Ctrl-P  previous conversation
  PgUp/PgDn, Up/Dn   scroll the messages
  Ctrl-T             show transfers (again: back)
  Esc                back to the chat, or put off an offer
  Ctrl-C             quit
  a / r              accept / reject the file offer popping up

Commands
  /join NAME                     join an open room and open it
  /join NAME --secret-file F     join a private room, the secret read from F
  /join NAME --secret            join a private room, asking for the secret (hidden)
  /leave [NAME]                  leave the room in view (or NAME)
  /msg PEER [TEXT]               open a DM (PEER: contact name or peer ID)
  /send PATH                     offer a file or folder to the peer of this DM
  /accept [ID] / /reject [ID]    answer the oldest waiting offer (or ID)
  /transfers                     show transfers and their progress
  /help                          this
  /quit                          quit
  //text                         send a message that starts with "/"`
