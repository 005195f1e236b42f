package tui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// Options configure the UI. The zero value is valid.
type Options struct {
	// Room, if set, is opened at start, joined first if we are not in it.
	Room string
	// Secret is Room's secret when it is a private room (nil: open). The
	// Model wipes it once sent, or at Close.
	Secret []byte
	// ReadSecret reads the secret file of `/join NAME --secret-file F`
	// (default: ReadSecretFile).
	ReadSecret func(path string) ([]byte, error)
	// StatusEvery is how often status and room membership are refreshed
	// besides what events say (negative: only from events; 0: 5 s in Run,
	// never in a bare Model).
	StatusEvery time.Duration
	// History is how many messages of each room are loaded (default 500).
	History int
	// Notice is shown on the notice line at start.
	Notice string
	// Program are options for the tea.Program Run starts (input, output,
	// window size...), after Run's own (alt screen, context).
	Program []tea.ProgramOption
}

// view is what the main pane shows.
type view int

const (
	viewChat view = iota
	viewTransfers
	viewHelp
)

// Model is the UI's state; bubbletea drives it through Init, Update and
// View. Create it with New and Close it when the program ends.
type Model struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      Backend
	opts   Options
	pump   *pump
	now    func() time.Time

	me         string
	status     node.Status
	contacts   map[string]node.ContactInfo // unblocked contacts by peer ID
	convs      convs
	sel        string // key of the selected conversation
	loaded     bool
	loading    bool
	pending    []node.Event // events that arrived before the first load
	roomOpened bool         // Options.Room was opened (or tried)

	transfers map[string]node.TransferInfo
	offers    []string // incoming offers waiting for an answer, oldest first
	popup     bool     // offers[0] pops up

	view    view
	secret  *secretPrompt
	input   textinput.Model
	vp      viewport.Model
	width   int
	height  int
	dirty   bool // the main pane must be rendered again
	follow  bool // the message view sticks to the bottom
	notice  string
	isError bool
	live    bool // the event stream is up
	down    bool // the event stream went down since the last good load
}

// secretPrompt asks for a private room's secret without echoing it.
type secretPrompt struct {
	room string
	in   textinput.Model
}

// New returns the UI's model over b. Its context bounds every backend call
// and the event stream.
func New(ctx context.Context, b Backend, opts Options) *Model {
	if opts.ReadSecret == nil {
		opts.ReadSecret = ReadSecretFile
	}
	if opts.History <= 0 {
		opts.History = 500
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Model{
		ctx: ctx, cancel: cancel, b: b, opts: opts, now: time.Now,
		contacts: map[string]node.ContactInfo{}, convs: newConvs(),
		transfers: map[string]node.TransferInfo{},
		input:     newInput("> ", textinput.EchoNormal),
		vp:        viewport.New(60, 10),
		width:     80, height: 24, dirty: true, follow: true,
	}
	m.vp.KeyMap = viewport.KeyMap{} // keys are the input line's; scrolling is handled by Update
	m.input.Focus()
	m.layout()
	if opts.Notice != "" {
		m.say("%s", opts.Notice)
	}
	return m
}

func newInput(prompt string, echo textinput.EchoMode) textinput.Model {
	in := textinput.New()
	in.Prompt = prompt
	in.EchoMode = echo
	in.EchoCharacter = '•'
	in.CharLimit = 64 << 10
	in.Cursor.SetMode(cursor.CursorStatic) // no blink ticks
	return in
}

// Close stops the event stream and waits for its goroutine, and wipes
// Options.Secret if it was never used. Safe to call twice.
func (m *Model) Close() {
	clear(m.opts.Secret)
	m.cancel()
	if m.pump != nil {
		m.pump.wg.Wait()
	}
}

// Init starts the event stream; the lists load once it is live.
func (m *Model) Init() tea.Cmd {
	m.pump = startPump(m.ctx, m.b)
	return m.pump.next(m.ctx)
}

// Update applies one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	if m.dirty {
		m.render()
	}
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
	case tea.KeyMsg:
		return m.key(msg)
	case tea.MouseMsg:
		return nil
	case panicMsg:
		panic(fmt.Sprintf("tui: event pump: %v", msg.v))
	case streamReadyMsg:
		m.live = true
		return tea.Batch(m.pump.next(m.ctx), m.load())
	case streamDownMsg:
		// The lists load again once the stream is back (streamReadyMsg):
		// loading now would only fail the same way, and its error would
		// outlive the reconnection.
		m.live = false
		m.down = true
		if msg.err != nil {
			m.fail("lost the node's event stream (%v); reconnecting", describe(msg.err))
		}
		return m.pump.next(m.ctx)
	case eventMsg:
		if !m.loaded {
			m.pending = append(m.pending, msg.ev)
			return m.pump.next(m.ctx)
		}
		return tea.Batch(m.pump.next(m.ctx), m.event(msg.ev))
	case loadedMsg:
		return m.loadedMsg(msg)
	case tickMsg:
		return m.refresh()
	case refreshedMsg:
		return tea.Batch(m.refreshed(msg), m.tick())
	default:
		return m.result(msg)
	}
	return nil
}

// event applies one node event.
func (m *Model) event(ev node.Event) tea.Cmd {
	switch ev.Type {
	case node.EventMessage:
		if ev.Message != nil {
			m.addDM(*ev.Message, true)
		}
	case node.EventRoom:
		return m.roomEvent(ev)
	case node.EventTransfer:
		if ev.Transfer != nil {
			return m.transfer(ev.Kind, *ev.Transfer)
		}
	case node.EventPeerConnected:
		m.status.Peers = slices.DeleteFunc(m.status.Peers, func(p node.PeerStatus) bool { return p.PeerID == ev.PeerID })
		m.status.Peers = append(m.status.Peers, node.PeerStatus{PeerID: ev.PeerID, Path: ev.Path, Addr: ev.Addr})
	case node.EventPeerDisconnected:
		m.status.Peers = slices.DeleteFunc(m.status.Peers, func(p node.PeerStatus) bool { return p.PeerID == ev.PeerID })
	case node.EventReachabilityChanged:
		m.status.Reachability = ev.Reachability
	}
	return nil
}

func (m *Model) roomEvent(ev node.Event) tea.Cmd {
	switch ev.Kind {
	case node.RoomKindMessage:
		if ev.RoomMessage != nil {
			m.addRoomMsg(*ev.RoomMessage, true)
		}
	case node.RoomKindJoined:
		// Joined elsewhere (kith room join) or by us: show it with what it
		// holds.
		if m.convs.get(roomKey(ev.Room)) == nil {
			m.convs.room(ev.Room)
			m.dirty = true
			return m.roomLog(ev.Room)
		}
	case node.RoomKindLeft:
		m.dropRoom(ev.Room)
	case node.RoomKindGap:
		if g := ev.RoomGap; g != nil {
			c := m.convs.room(ev.Room)
			c.missing.add(*g, c.entries)
			who := cmp.Or(m.contactName(g.Author, g.Name), termtext.ShortID(g.Author))
			n := g.To - g.From + 1
			m.setNotice(false, "#%s: %s from %s missing; asking other members", ev.Room, plural(n, "message"), who)
			m.dirty = true
		}
	}
	return nil
}

// addDM stores a direct message; live counts it unread when it is new,
// from the peer, and not in view.
func (m *Model) addDM(msg node.MessageInfo, live bool) {
	peer, e := dmEntry(msg, m.me)
	c := m.convs.dm(peer, m.contactName(peer, msg.Name))
	m.added(c, c.add(e) && live && !e.mine)
}

func (m *Model) addRoomMsg(msg node.RoomMessageInfo, live bool) {
	e := roomEntry(msg)
	c := m.convs.room(msg.Room)
	if e.rseq > 0 {
		c.missing.fill(e.from, e.rseq)
	}
	m.added(c, c.add(e) && live && !e.mine)
}

// added counts a new message unread unless its conversation is in view,
// and marks the view dirty when it is.
func (m *Model) added(c *conv, unread bool) {
	inView := c.key() == m.sel && m.view == viewChat
	if unread && !inView {
		c.unread++
	}
	m.dirty = true
}

func (m *Model) contactName(peer, fallback string) string {
	if c, ok := m.contacts[peer]; ok {
		return c.Name
	}
	return fallback
}

func (m *Model) dropRoom(name string) {
	key := roomKey(name)
	if m.convs.get(key) == nil {
		return
	}
	if m.sel == key {
		next := m.convs.step(key, 1)
		if next == key {
			next = ""
		}
		m.sel = next
	}
	m.convs.remove(key)
	if m.sel == "" {
		m.selectConv(m.convs.step("", 0))
	}
	m.dirty = true
}

// transfer applies a transfer event (or an answer's result). A new offer
// is looked up in full: until it is accepted, only the transfer itself
// lists what it holds.
func (m *Model) transfer(kind string, t node.TransferInfo) tea.Cmd {
	prev, seen := m.transfers[t.ID]
	if len(t.Names) == 0 { // events do not repeat what a lookup found
		t.Names = prev.Names
	}
	t.Dir = cmp.Or(t.Dir, prev.Dir)
	m.transfers[t.ID] = t
	waiting := t.Direction == "in" && t.State == "offered" && !t.Ticket
	has := slices.Contains(m.offers, t.ID)
	var cmd tea.Cmd
	switch {
	case waiting && !has:
		m.offers = append(m.offers, t.ID)
		m.popup = true
		if len(t.Names) == 0 {
			cmd = m.offerDetails(t.ID)
		}
	case !waiting && has:
		m.offers = slices.DeleteFunc(m.offers, func(id string) bool { return id == t.ID })
		m.popup = m.popup && len(m.offers) > 0
	}
	if seen && prev.State != t.State && kind != node.TransferProgress {
		switch t.State {
		case "done", "failed", "rejected":
			m.say("%s: %s", transferLabel(t), t.State)
		}
	}
	if m.view == viewTransfers || m.popup {
		m.dirty = true
	}
	return cmd
}

// offerDetailsMsg: what an offer holds, from the node.
type offerDetailsMsg struct{ t node.TransferInfo }

func (m *Model) offerDetails(id string) tea.Cmd {
	b := m.b
	return m.call(callTimeout, func(ctx context.Context) tea.Msg {
		t, err := b.Transfer(ctx, id)
		if err != nil {
			return nil // the popup still offers it, by size
		}
		return offerDetailsMsg{t}
	})
}

// offerDetailed fills in a waiting offer's names: the top-level items of
// its entries.
func (m *Model) offerDetailed(d node.TransferInfo) {
	t, ok := m.transfers[d.ID]
	if !ok || t.State != "offered" || len(t.Names) > 0 {
		return
	}
	for _, e := range d.Entries {
		top, _, _ := strings.Cut(e.Path, "/")
		if !slices.Contains(t.Names, top) {
			t.Names = append(t.Names, top)
		}
	}
	t.Dir = cmp.Or(t.Dir, d.Dir)
	m.transfers[d.ID] = t
	m.dirty = true
}

// selectConv shows the conversation key.
func (m *Model) selectConv(key string) {
	if key == "" {
		return
	}
	m.sel = key
	m.view = viewChat
	m.follow = true
	if c := m.convs.get(key); c != nil {
		c.unread = 0
	}
	m.dirty = true
}

func (m *Model) current() *conv { return m.convs.get(m.sel) }

// say and fail set the notice line.
func (m *Model) say(format string, args ...any)  { m.setNotice(false, format, args...) }
func (m *Model) fail(format string, args ...any) { m.setNotice(true, format, args...) }
