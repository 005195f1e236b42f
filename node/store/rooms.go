package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

var _ chat.RoomStore = (*Store)(nil)

// ErrRoomSeq is wrapped by AddRoomMessage's error for a seq above
// math.MaxInt64, which SQLite cannot keep as an integer.
var ErrRoomSeq = errors.New("store: room message seq above 2^63-1")

// SaveRoom stores a room we joined, replacing one of the same name (see
// chat.RoomStore). The key is kept as it is: it is a secret, and nothing
// here logs it or puts it in an error. JoinedAt is kept to the millisecond.
func (s *Store) SaveRoom(ctx context.Context, r chat.Room) error {
	if err := protocols.ValidRoomName(r.Name); err != nil {
		return fmt.Errorf("store: save room: %w", err)
	}
	var key []byte // NULL: an open room
	if r.Key != nil {
		key = r.Key.Bytes()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO rooms (name, key, topic, joined_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET key = excluded.key, topic = excluded.topic, joined_at = excluded.joined_at`,
		r.Name, key, r.Topic, r.JoinedAt.UnixMilli())
	return wrapErr(err, "store: save room %q: %w", r.Name)
}

// RoomFloor returns the clock below which room's history is not wanted, 0
// for none.
func (s *Store) RoomFloor(ctx context.Context, room string) (int64, error) {
	var clock int64
	err := s.r.QueryRowContext(ctx, `SELECT clock FROM room_floors WHERE room = ?`, room).Scan(&clock)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return clock, wrapErr(err, "store: floor of %q: %w", room)
}

// SetRoomFloor records that room's history below clock (at least 1) is not
// wanted.
func (s *Store) SetRoomFloor(ctx context.Context, room string, clock int64) error {
	if clock < 1 {
		return fmt.Errorf("store: floor of %q: clock %d; it must be at least 1", room, clock)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO room_floors (room, clock) VALUES (?, ?)
		ON CONFLICT (room) DO UPDATE SET clock = excluded.clock`, room, clock)
	return wrapErr(err, "store: set the floor of %q: %w", room)
}

// RoomJoining says whether we began taking room's recent past and have
// not finished (SetRoomJoining).
func (s *Store) RoomJoining(ctx context.Context, room string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM room_joins WHERE room = ?`, room).Scan(&n)
	return n > 0, wrapErr(err, "store: is %q joining: %w", room)
}

// SetRoomJoining records that we began (true) or finished (false) taking
// room's recent past.
func (s *Store) SetRoomJoining(ctx context.Context, room string, joining bool) error {
	q := `DELETE FROM room_joins WHERE room = ?`
	if joining {
		q = `INSERT INTO room_joins (room) VALUES (?) ON CONFLICT (room) DO NOTHING`
	}
	_, err := s.w.ExecContext(ctx, q, room)
	return wrapErr(err, "store: mark %q joining: %w", room)
}

// DeleteRoom forgets a room, keeping its messages. Deleting a room that is
// not stored is not an error.
func (s *Store) DeleteRoom(ctx context.Context, name string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM rooms WHERE name = ?`, name)
	return wrapErr(err, "store: delete room %q: %w", name)
}

// Rooms returns the stored rooms, by name.
func (s *Store) Rooms(ctx context.Context) ([]chat.Room, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, key, topic, joined_at FROM rooms ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: rooms: %w", err)
	}
	defer rows.Close()
	var out []chat.Room
	for rows.Next() {
		var (
			r      chat.Room
			key    []byte
			joined int64
		)
		if err := rows.Scan(&r.Name, &key, &r.Topic, &joined); err != nil {
			return nil, fmt.Errorf("store: read room: %w", err)
		}
		if key != nil {
			if r.Key, err = protocols.RoomKeyFromBytes(key); err != nil {
				return nil, fmt.Errorf("store: read room %q: %w", r.Name, err)
			}
		}
		r.JoinedAt = time.UnixMilli(joined).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: rooms: %w", err)
	}
	return out, nil
}

// AddRoomMessage stores m once per (room, author, seq): it returns false,
// changing nothing, when one is stored already. SentAt and ReceivedAt are
// kept to the millisecond; a nil or empty Raw is kept as none. Author must
// be a peer ID, Seq at least 1 and at most math.MaxInt64 (ErrRoomSeq), and
// Clock at least 1.
func (s *Store) AddRoomMessage(ctx context.Context, m chat.RoomMessage) (bool, error) {
	if err := checkRoomMessage(m); err != nil {
		return false, err
	}
	n, err := changed(s.w.ExecContext(ctx, insertRoomMessage, roomMessageArgs(m)...))
	if err != nil {
		return false, fmt.Errorf("store: add room message %s/%d in %q: %w", m.Author, m.Seq, m.Room, err)
	}
	return n == 1, nil
}

// AddRoomMessages stores ms as AddRoomMessage does each, in one
// transaction: one sync for them all, where one each made a member's
// backfill of a long room (thousands of messages) thousands of syncs.
// added[i] says whether ms[i] was new; on an error none is stored.
func (s *Store) AddRoomMessages(ctx context.Context, ms []chat.RoomMessage) ([]bool, error) {
	for _, m := range ms {
		if err := checkRoomMessage(m); err != nil {
			return nil, err
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: add room messages: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, insertRoomMessage)
	if err != nil {
		return nil, fmt.Errorf("store: add room messages: %w", err)
	}
	defer st.Close()
	added := make([]bool, len(ms))
	for i, m := range ms {
		n, err := changed(st.ExecContext(ctx, roomMessageArgs(m)...))
		if err != nil {
			return nil, fmt.Errorf("store: add room message %s/%d in %q: %w", m.Author, m.Seq, m.Room, err)
		}
		added[i] = n == 1
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: add room messages: %w", err)
	}
	return added, nil
}

const insertRoomMessage = `INSERT INTO room_messages
	(room, author, seq, id, clock, sent_at, received_at, text, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING`

// roomMessageArgs are insertRoomMessage's arguments for m.
func roomMessageArgs(m chat.RoomMessage) []any {
	var raw []byte // NULL: not published yet
	if len(m.Raw) > 0 {
		raw = m.Raw
	}
	return []any{m.Room, []byte(m.Author), int64(m.Seq), m.ID, m.Clock, m.SentAt.UnixMilli(), m.ReceivedAt.UnixMilli(), m.Text, raw}
}

func checkRoomMessage(m chat.RoomMessage) error {
	if err := checkPeer(m.Author); err != nil {
		return err
	}
	switch {
	case m.Seq == 0:
		return fmt.Errorf("store: room message %s in %q: seq 0", m.Author, m.Room)
	case m.Seq > math.MaxInt64:
		return fmt.Errorf("%w: %d from %s in %q", ErrRoomSeq, m.Seq, m.Author, m.Room)
	case m.Clock < 1:
		return fmt.Errorf("store: room message %s/%d in %q: clock %d", m.Author, m.Seq, m.Room, m.Clock)
	}
	return nil
}

// SetRoomMessageSigned records the ID and signed form of a stored message.
// A message that has them already keeps them; a message that is not stored
// is an error wrapping chat.ErrNotFound.
func (s *Store) SetRoomMessageSigned(ctx context.Context, room string, author peer.ID, seq uint64, id string, raw []byte) error {
	if seq > math.MaxInt64 {
		return fmt.Errorf("%w: %d", ErrRoomSeq, seq)
	}
	if len(raw) == 0 {
		return fmt.Errorf("store: sign room message %s/%d in %q: empty signed form", author, seq, room)
	}
	n, err := changed(s.w.ExecContext(ctx, `UPDATE room_messages SET id = ?, raw = ?
		WHERE room = ? AND author = ? AND seq = ? AND raw IS NULL`, id, raw, room, []byte(author), int64(seq)))
	if err != nil {
		return fmt.Errorf("store: sign room message %s/%d in %q: %w", author, seq, room, err)
	}
	if n > 0 {
		return nil
	}
	held, err := s.HasRoomMessage(ctx, room, author, seq)
	switch {
	case err != nil:
		return err
	case !held:
		return fmt.Errorf("%w: room message %s/%d in %q", chat.ErrNotFound, author, seq, room)
	}
	return nil
}

// Unpublished returns author's messages in room that have no signed form,
// by seq.
func (s *Store) Unpublished(ctx context.Context, room string, author peer.ID) ([]chat.RoomMessage, error) {
	return s.roomMessages(ctx, `SELECT `+roomColumns+` FROM room_messages
		WHERE room = ? AND author = ? AND raw IS NULL ORDER BY seq`, room, []byte(author))
}

// HasRoomMessage says whether (room, author, seq) is stored.
func (s *Store) HasRoomMessage(ctx context.Context, room string, author peer.ID, seq uint64) (bool, error) {
	if seq > math.MaxInt64 {
		return false, nil // AddRoomMessage never stores one
	}
	var held bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM room_messages
		WHERE room = ? AND author = ? AND seq = ?)`, room, []byte(author), int64(seq)).Scan(&held)
	return held, wrapErr(err, "store: has room message %s/%d in %q: %w", author, seq, room)
}

// HighWater returns the highest seq stored from author in room, 0 for none.
func (s *Store) HighWater(ctx context.Context, room string, author peer.ID) (uint64, error) {
	var hw int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM room_messages
		WHERE room = ? AND author = ?`, room, []byte(author)).Scan(&hw)
	return uint64(hw), wrapErr(err, "store: high water of %s in %q: %w", author, room)
}

// HighWaters returns HighWater for every author of room.
func (s *Store) HighWaters(ctx context.Context, room string) (map[peer.ID]uint64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT author, max(seq) FROM room_messages
		WHERE room = ? GROUP BY author`, room)
	if err != nil {
		return nil, fmt.Errorf("store: high waters in %q: %w", room, err)
	}
	defer rows.Close()
	out := map[peer.ID]uint64{}
	for rows.Next() {
		var (
			author []byte
			hw     int64
		)
		if err := rows.Scan(&author, &hw); err != nil {
			return nil, fmt.Errorf("store: high waters in %q: %w", room, err)
		}
		out[peer.ID(author)] = uint64(hw)
	}
	return out, wrapErr(rows.Err(), "store: high waters in %q: %w", room)
}

// RoomMessages returns a room's messages selected by f, in chat.RoomOrder.
// After is compared to the millisecond, as times are kept. A negative
// Limit is an error.
func (s *Store) RoomMessages(ctx context.Context, f chat.RoomFilter) ([]chat.RoomMessage, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("store: room messages: negative limit %d", f.Limit)
	}
	where := []string{`room = ?`}
	args := []any{f.Room}
	if !f.After.IsZero() {
		where = append(where, `received_at > ?`)
		args = append(args, f.After.UnixMilli())
	}
	if f.Signed {
		where = append(where, `raw IS NOT NULL`)
	}
	if f.ClockAtMost > 0 {
		where = append(where, `clock <= ?`)
		args = append(args, f.ClockAtMost)
	}
	if f.ClockAtLeast > 0 {
		where = append(where, `clock >= ?`)
		args = append(args, f.ClockAtLeast)
	}
	if len(f.Above) > 0 || len(f.Held) > 0 {
		return s.roomMessagesLacked(ctx, f, where, args)
	}
	q := `SELECT ` + roomColumns + ` FROM room_messages WHERE ` + strings.Join(where, ` AND `)
	if f.Limit == 0 {
		return s.roomMessages(ctx, q+` ORDER BY clock, author, seq`, args...)
	}
	if f.Oldest {
		return s.roomMessages(ctx, q+` ORDER BY clock, author, seq LIMIT ?`, append(args, f.Limit)...)
	}
	// The last Limit in room order, then oldest first.
	q = `SELECT * FROM (` + q + ` ORDER BY clock DESC, author DESC, seq DESC LIMIT ?)
		ORDER BY clock, author, seq`
	return s.roomMessages(ctx, q, append(args, f.Limit)...)
}

// roomMessagesLacked is RoomMessages with Above or Held set (a history
// answer): it walks the keys of the messages the other conditions (where)
// keep, in room order (or backwards, for the last Limit), keeps those that
// Above and Held leave, up to Limit, then reads those messages whole.
// Filtering here costs a map lookup per message; in SQL it cost a scan of
// every listed author per message (1.5 s for one answer in a room of
// 18 000 messages from 400 authors: BenchmarkRoomHistoryAnswer).
func (s *Store) roomMessagesLacked(ctx context.Context, f chat.RoomFilter, where []string, args []any) ([]chat.RoomMessage, error) {
	haves := make(map[string]protocols.HistoryHave, max(len(f.Above), len(f.Held)))
	for a, through := range f.Above {
		haves[string(a)] = protocols.HistoryHave{Through: through, Held: f.Held[a]}
	}
	for a, held := range f.Held {
		if _, ok := f.Above[a]; !ok {
			haves[string(a)] = protocols.HistoryHave{Held: held}
		}
	}
	order := ` ORDER BY clock, author, seq`
	if f.Limit > 0 && !f.Oldest {
		order = ` ORDER BY clock DESC, author DESC, seq DESC`
	}
	rows, err := s.r.QueryContext(ctx, `SELECT author, seq FROM room_messages WHERE `+strings.Join(where, ` AND `)+order, args...)
	if err != nil {
		return nil, fmt.Errorf("store: room messages: %w", err)
	}
	type key struct {
		author []byte
		seq    int64
	}
	var keys []key
	for rows.Next() {
		var (
			author sql.RawBytes
			seq    int64
		)
		if err := rows.Scan(&author, &seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: read room message: %w", err)
		}
		if h, ok := haves[string(author)]; ok && !h.Lacks(uint64(seq)) {
			continue
		}
		keys = append(keys, key{bytes.Clone(author), seq})
		if len(keys) == f.Limit {
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: room messages: %w", err)
	}
	out := make([]chat.RoomMessage, 0, len(keys))
	for chunk := range slices.Chunk(keys, lackedChunk) {
		vals := strings.TrimSuffix(strings.Repeat(`(?, ?), `, len(chunk)), `, `)
		cargs := make([]any, 0, 1+2*len(chunk))
		cargs = append(cargs, f.Room)
		for _, k := range chunk {
			cargs = append(cargs, k.author, k.seq)
		}
		ms, err := s.roomMessages(ctx, `SELECT `+roomColumns+` FROM room_messages
			WHERE room = ? AND (author, seq) IN (VALUES `+vals+`)`, cargs...)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	slices.SortFunc(out, chat.RoomOrder)
	return out, nil
}

// lackedChunk is how many messages roomMessagesLacked reads per statement
// (two parameters each, well under SQLite's 32 766).
const lackedChunk = 256

// RoomGaps returns, for every author of room, the seqs from 1 to its
// high-water mark that are not stored, as ranges by author and From.
func (s *Store) RoomGaps(ctx context.Context, room string) ([]chat.Gap, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT author, prev + 1, seq - 1 FROM (
			SELECT author, seq, lag(seq, 1, 0) OVER (PARTITION BY author ORDER BY seq) AS prev
			FROM room_messages WHERE room = ?)
		WHERE seq > prev + 1 ORDER BY author, prev`, room)
	if err != nil {
		return nil, fmt.Errorf("store: gaps in %q: %w", room, err)
	}
	defer rows.Close()
	var out []chat.Gap
	for rows.Next() {
		var (
			author   []byte
			from, to int64
		)
		if err := rows.Scan(&author, &from, &to); err != nil {
			return nil, fmt.Errorf("store: gaps in %q: %w", room, err)
		}
		out = append(out, chat.Gap{Author: peer.ID(author), From: uint64(from), To: uint64(to)})
	}
	return out, wrapErr(rows.Err(), "store: gaps in %q: %w", room)
}

const roomColumns = `room, author, seq, id, clock, sent_at, received_at, text, raw`

func (s *Store) roomMessages(ctx context.Context, q string, args ...any) ([]chat.RoomMessage, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: room messages: %w", err)
	}
	defer rows.Close()
	var out []chat.RoomMessage
	for rows.Next() {
		var (
			m              chat.RoomMessage
			author         []byte
			seq            int64
			sent, received int64
		)
		if err := rows.Scan(&m.Room, &author, &seq, &m.ID, &m.Clock, &sent, &received, &m.Text, &m.Raw); err != nil {
			return nil, fmt.Errorf("store: read room message: %w", err)
		}
		m.Author, m.Seq = peer.ID(author), uint64(seq)
		m.SentAt, m.ReceivedAt = time.UnixMilli(sent).UTC(), time.UnixMilli(received).UTC()
		out = append(out, m)
	}
	return out, wrapErr(rows.Err(), "store: room messages: %w")
}

// RoomMessageCount returns how many messages of room are stored: a range
// of the room_messages_order index, whatever the other rooms hold.
func (s *Store) RoomMessageCount(ctx context.Context, room string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM room_messages WHERE room = ?`, room).Scan(&n)
	return n, wrapErr(err, "store: count messages of %q: %w", room)
}
