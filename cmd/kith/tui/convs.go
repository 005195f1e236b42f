package tui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// maxLines bounds the messages kept in memory per conversation.
const maxLines = 2000

// entry is one message in a conversation.
type entry struct {
	id    string
	from  string // peer ID of the author
	name  string // the author's contact name, if any
	mine  bool
	text  string
	at    time.Time // as the author stated it
	seq   int64     // DMs: our store's order
	rseq  uint64    // rooms: the author's sequence number (0: unknown)
	clock int64     // rooms: the place in the room's order (0: unknown, at's)
	state string    // DMs: received, delivered or queued
}

// key names the message in its conversation: a room message by author and
// seq, which it has from the moment it is stored (our own gets its ID only
// once published, and a listing or an event may show it before that); a
// DM, or a room message without a seq, by ID.
func (e entry) key() string {
	if e.rseq > 0 {
		return e.from + "/" + strconv.FormatUint(e.rseq, 10)
	}
	return e.id
}

// conv is a conversation: a room or a DM with one peer.
type conv struct {
	room    string // set for a room
	peer    string // set for a DM: the peer ID
	private bool   // a private room
	members int    // room members seen, us not counted
	name    string // DM: the contact name, if any
	entries []entry
	ids     map[string]int // entry key → index in entries
	unread  int
	missing gaps // rooms: messages the node reported missing, not yet arrived
}

func roomKey(name string) string { return "room:" + name }
func dmKey(peer string) string   { return "dm:" + peer }

func (c *conv) key() string {
	if c.room != "" {
		return roomKey(c.room)
	}
	return dmKey(c.peer)
}

// label is how the sidebar names the conversation (not yet escaped).
func (c *conv) label() string {
	switch {
	case c.room != "":
		return "#" + c.room
	case c.name != "":
		return "@" + c.name
	}
	return "@" + termtext.ShortID(c.peer)
}

// add stores e in order, or updates the entry with its key; it reports
// whether e is new and kept (a conversation keeps its maxLines newest).
func (c *conv) add(e entry) bool {
	if c.ids == nil {
		c.ids = map[string]int{}
	}
	if i, ok := c.ids[e.key()]; ok && e.key() != "" {
		if e.id == "" { // an update never takes a published message's ID away
			e.id = c.entries[i].id
		}
		c.entries[i] = e
		return false
	}
	// Find the place: after every entry that sorts before or with e, so
	// entries arriving in order append.
	i := len(c.entries)
	for i > 0 && c.before(e, c.entries[i-1]) {
		i--
	}
	c.entries = slices.Insert(c.entries, i, e)
	kept := true
	if over := len(c.entries) - maxLines; over > 0 {
		c.entries = slices.Delete(c.entries, 0, over)
		kept = i >= over // e itself was older than all maxLines kept
	}
	c.reindex()
	return kept
}

// before reports whether a sorts strictly before b: DMs by our store's
// sequence, rooms in the order every member shows (chat.RoomOrder: the
// message's clock, then the author, then the author's seq).
func (c *conv) before(a, b entry) bool {
	if c.room == "" {
		if a.seq != 0 && b.seq != 0 {
			return a.seq < b.seq
		}
		return a.at.Before(b.at)
	}
	// Peer IDs of one kind have base58 forms of one length, whose order is
	// that of their bytes, chat.RoomOrder's.
	return cmp.Or(cmp.Compare(a.orderClock(), b.orderClock()), cmp.Compare(len(a.from), len(b.from)),
		strings.Compare(a.from, b.from), cmp.Compare(a.rseq, b.rseq)) < 0
}

// orderClock is a room entry's clock, or, from a node that sends none, the
// time the author stated (a message's clock before clocks).
func (e entry) orderClock() int64 {
	if e.clock > 0 {
		return e.clock
	}
	return e.at.UnixMilli()
}

func (c *conv) reindex() {
	clear(c.ids)
	for i, e := range c.entries {
		if k := e.key(); k != "" {
			c.ids[k] = i
		}
	}
}

func dmEntry(m node.MessageInfo, me string) (peer string, e entry) {
	mine := m.From == me
	peer = m.From
	if mine {
		peer = m.To
	}
	return peer, entry{id: m.ID, from: m.From, name: m.Name, mine: mine, text: m.Text, at: m.SentAt, seq: m.Seq, state: m.State}
}

func roomEntry(m node.RoomMessageInfo) entry {
	return entry{id: m.ID, from: m.From, name: m.Name, mine: m.Mine, text: m.Text, at: m.SentAt, rseq: m.Seq, clock: m.Clock}
}

// convs holds every conversation and the sidebar's order.
type convs struct {
	byKey map[string]*conv
	order []string
}

func newConvs() convs { return convs{byKey: map[string]*conv{}} }

func (cs *convs) get(key string) *conv { return cs.byKey[key] }

// room returns the room's conversation, creating it.
func (cs *convs) room(name string) *conv {
	if c := cs.byKey[roomKey(name)]; c != nil {
		return c
	}
	c := &conv{room: name}
	cs.put(c)
	return c
}

// dm returns the DM conversation with peer, creating it.
func (cs *convs) dm(peer, name string) *conv {
	c := cs.byKey[dmKey(peer)]
	if c == nil {
		c = &conv{peer: peer}
		defer cs.put(c)
	}
	if name != "" && c.name != name {
		c.name = name
		defer cs.sort()
	}
	return c
}

func (cs *convs) put(c *conv) {
	cs.byKey[c.key()] = c
	cs.order = append(cs.order, c.key())
	cs.sort()
}

func (cs *convs) remove(key string) {
	delete(cs.byKey, key)
	cs.order = slices.DeleteFunc(cs.order, func(k string) bool { return k == key })
}

// rank groups the sidebar: rooms, DMs with contacts, other DMs.
func (c *conv) rank() int {
	switch {
	case c.room != "":
		return 0
	case c.name != "":
		return 1
	}
	return 2
}

// sort orders the sidebar: rooms, then DMs with contacts, then other DMs,
// each by label.
func (cs *convs) sort() {
	slices.SortFunc(cs.order, func(a, b string) int {
		ca, cb := cs.byKey[a], cs.byKey[b]
		return cmp.Or(cmp.Compare(ca.rank(), cb.rank()),
			strings.Compare(strings.ToLower(ca.label()), strings.ToLower(cb.label())), strings.Compare(a, b))
	})
}

// step returns the key d places from key in the sidebar, wrapping.
func (cs *convs) step(key string, d int) string {
	n := len(cs.order)
	if n == 0 {
		return ""
	}
	i := slices.Index(cs.order, key)
	if i < 0 {
		return cs.order[0]
	}
	return cs.order[((i+d)%n+n)%n]
}
