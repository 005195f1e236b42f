package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

// Errors of the room methods, besides chat's ErrNotJoined,
// ErrRoomKeyChange and ErrRoomText.
var (
	// ErrBadRoomName is returned for a name protocols.ValidRoomName refuses.
	ErrBadRoomName = errors.New("bad room name")
	// ErrBadRoomSecret is returned for a secret that is too short or too
	// long. The error never shows the secret.
	ErrBadRoomSecret = fmt.Errorf("a room secret must be %d to %d bytes", protocols.MinRoomSecret, protocols.MaxRoomSecret)
	// ErrBadRoomLimit is returned for a negative limit.
	ErrBadRoomLimit = errors.New("bad limit")
)

// startRooms builds GossipSub and the room service, which rejoins the
// rooms the store holds.
func (n *Node) startRooms(log *slog.Logger) error {
	drops, err := newRoomDrops(n.registry)
	if err != nil {
		return err
	}
	ps, err := chat.NewPubSub(n.ctx, n.host, pubsub.WithRawTracer(drops))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	opts := []chat.RoomOption{chat.WithRoomLogger(log), chat.WithRoomEvents(n.onRoomEvent)}
	if n.dht != nil {
		// Members advertise and look each other up in the DHT (mDNS finds
		// those on the LAN: pubsub learns their rooms once connected).
		opts = append(opts, chat.WithRoomDiscovery(drouting.NewRoutingDiscovery(n.dht)))
	}
	r, err := chat.NewRooms(n.host, ps, n.store, chat.RoomConfig{}, opts...)
	if err != nil {
		return fmt.Errorf("node: rooms: %w", err)
	}
	n.rooms = r
	return nil
}

// JoinRoom joins the open room name (secret nil or empty) or the private
// one whose key derives from secret. Joining a room we are in with the
// same secret returns it; with another secret (or none where it had one)
// is an error wrapping chat.ErrRoomKeyChange.
func (n *Node) JoinRoom(ctx context.Context, name string, secret []byte) (RoomInfo, error) {
	if err := checkRoomName(name); err != nil {
		return RoomInfo{}, err
	}
	if len(secret) == 0 {
		secret = nil
	} else if len(secret) < protocols.MinRoomSecret || len(secret) > protocols.MaxRoomSecret {
		return RoomInfo{}, fmt.Errorf("join %s: %w (got %d)", name, ErrBadRoomSecret, len(secret))
	}
	r, added, err := n.rooms.Join(ctx, name, secret)
	if errors.Is(err, chat.ErrRoomKeyChange) {
		return RoomInfo{}, wrapped{fmt.Sprintf("already a member of room %s with another secret (or none): "+
			"kith room leave %s first to join it with this one", name, name), err}
	}
	if err != nil {
		return RoomInfo{}, err
	}
	if added {
		n.events.Publish(Event{Type: EventRoom, Kind: RoomKindJoined, Room: name})
	}
	return n.roomInfo(ctx, r)
}

// LeaveRoom leaves room name; its messages stay stored.
func (n *Node) LeaveRoom(ctx context.Context, name string) error {
	if err := checkRoomName(name); err != nil {
		return err
	}
	if err := n.rooms.Leave(ctx, name); err != nil {
		return roomErr(name, err)
	}
	n.events.Publish(Event{Type: EventRoom, Kind: RoomKindLeft, Room: name})
	return nil
}

// Rooms lists the rooms we are in, by name.
func (n *Node) Rooms(ctx context.Context) ([]RoomInfo, error) {
	rs, err := n.rooms.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RoomInfo, 0, len(rs))
	for _, r := range rs {
		info, err := n.roomInfo(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// roomInfo describes r: its messages counted in the store, its members
// seen in its topic.
func (n *Node) roomInfo(ctx context.Context, r chat.Room) (RoomInfo, error) {
	count, err := n.store.RoomMessageCount(ctx, r.Name)
	if err != nil {
		return RoomInfo{}, err
	}
	info := RoomInfo{Name: r.Name, Private: r.Private(), Messages: count, JoinedAt: r.JoinedAt.UTC()}
	if t, err := n.rooms.Topic(r.Name); err == nil {
		info.Members = len(t.ListPeers())
	}
	return info, nil
}

// SendRoom publishes text to room. The message is stored first: when
// publishing fails it stays stored and is published again when the room is
// next joined (a restart), and the error says so.
func (n *Node) SendRoom(ctx context.Context, room, text string) (RoomMessageInfo, error) {
	if err := checkRoomName(room); err != nil {
		return RoomMessageInfo{}, err
	}
	if text == "" {
		return RoomMessageInfo{}, chat.ErrEmpty
	}
	if !utf8.ValidString(text) {
		return RoomMessageInfo{}, fmt.Errorf("%w: not UTF-8", chat.ErrRoomText)
	}
	m, err := n.rooms.Send(ctx, room, text)
	switch {
	case errors.Is(err, chat.ErrNotJoined), errors.Is(err, chat.ErrRoomText):
		return RoomMessageInfo{}, roomErr(room, err)
	case err != nil && m.Seq > 0:
		return n.roomMessageInfo(ctx, m), fmt.Errorf("%w (the message is stored and published again when the room is next joined)", err)
	case err != nil:
		return RoomMessageInfo{}, err
	}
	return n.roomMessageInfo(ctx, m), nil
}

// RoomMessages lists room's last limit messages (0: all) in room order,
// oldest first. A room we left still shows the messages it kept; a room
// we never held a message of and are not in is chat.ErrNotJoined.
func (n *Node) RoomMessages(ctx context.Context, room string, limit int) ([]RoomMessageInfo, error) {
	if err := checkRoomName(room); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrBadRoomLimit, limit)
	}
	ms, err := n.rooms.Messages(ctx, room, chat.RoomFilter{Limit: limit})
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		if _, err := n.rooms.Topic(room); err != nil {
			return nil, roomErr(room, err)
		}
	}
	out := make([]RoomMessageInfo, len(ms))
	names := map[string]string{}
	for i, m := range ms {
		out[i] = n.roomMessageInfoNamed(ctx, m, names)
	}
	return out, nil
}

func (n *Node) roomMessageInfo(ctx context.Context, m chat.RoomMessage) RoomMessageInfo {
	return n.roomMessageInfoNamed(ctx, m, nil)
}

// roomMessageInfoNamed is roomMessageInfo looking names up once per author
// in names, when given.
func (n *Node) roomMessageInfoNamed(ctx context.Context, m chat.RoomMessage, names map[string]string) RoomMessageInfo {
	from := m.Author.String()
	name, ok := names[from]
	if !ok {
		name = n.nameOf(ctx, m.Author)
		if names != nil {
			names[from] = name
		}
	}
	return RoomMessageInfo{
		ID: m.ID, Room: m.Room, From: from, Name: name, Mine: m.Author == n.host.ID(), Seq: m.Seq,
		Text: m.Text, SentAt: m.SentAt.UTC(), ReceivedAt: m.ReceivedAt.UTC(), Clock: m.Clock,
	}
}

// onRoomEvent publishes a stored room message, or a gap seen (which the
// room service asks members to fill over history), on the event stream.
func (n *Node) onRoomEvent(e chat.RoomEvent) {
	if g := e.Gap; g != nil {
		n.events.Publish(Event{Type: EventRoom, Kind: RoomKindGap, Room: e.Room, PeerID: g.Author.String(),
			RoomGap: &RoomGapInfo{Author: g.Author.String(), Name: n.nameOf(n.ctx, g.Author), From: g.From, To: g.To}})
		return
	}
	if e.Message == nil {
		return
	}
	info := n.roomMessageInfo(n.ctx, *e.Message)
	n.events.Publish(Event{Type: EventRoom, Kind: RoomKindMessage, Room: e.Room, PeerID: info.From, RoomMessage: &info})
}

// CheckRoomName returns an error wrapping ErrBadRoomName, and saying what
// a name may be, for a name protocols.ValidRoomName refuses.
func CheckRoomName(name string) error {
	if protocols.ValidRoomName(name) != nil {
		return fmt.Errorf("%w %q: a room name is 1 to %d bytes of a-z, 0-9, '-', '_' and '.', starting with a letter or a digit",
			ErrBadRoomName, name, protocols.MaxRoomNameLen)
	}
	return nil
}

func checkRoomName(name string) error { return CheckRoomName(name) }

// roomErr says chat's errors in the user's terms, naming the room.
func roomErr(room string, err error) error {
	switch {
	case errors.Is(err, chat.ErrNotJoined):
		return wrapped{fmt.Sprintf("not a member of room %s (kith room ls lists yours; kith room join %s joins it)", room, room), err}
	case errors.Is(err, chat.ErrRoomText):
		return wrapped{fmt.Sprintf("a room message is at most %d bytes of UTF-8 text", protocols.MaxRoomText), err}
	}
	return fmt.Errorf("room %s: %w", room, err)
}

// wrapped is an error with its own message that still matches err.
type wrapped struct {
	msg string
	err error
}

func (w wrapped) Error() string { return w.msg }
func (w wrapped) Unwrap() error { return w.err }
