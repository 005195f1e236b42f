package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// AddIncoming stores a received message (state received). It returns false,
// changing nothing, when m.Peer's message m.ID is already stored. m.Out,
// m.State and m.Seq are ignored; SentAt is kept to the millisecond.
func (s *Store) AddIncoming(ctx context.Context, m chat.Message) (bool, error) {
	if err := checkPeer(m.Peer); err != nil {
		return false, err
	}
	n, err := changed(s.w.ExecContext(ctx, `
		INSERT INTO messages (id, peer_id, direction, text, sent_at, state, stored_at)
		VALUES (?, ?, 'in', ?, ?, 'received', ?)
		ON CONFLICT (peer_id, direction, id) DO NOTHING`,
		m.ID[:], m.Peer.String(), m.Text, m.SentAt.UnixMilli(), time.Now().UnixMilli()))
	if err != nil {
		return false, fmt.Errorf("store: add incoming %s: %w", m.ID, err)
	}
	return n == 1, nil
}

// AddOutgoing stores a message we are sending, in state queued. Storing an
// ID that is already in the outbox or delivered is an error: our IDs are
// random and used once. m.Out, m.State and m.Seq are ignored.
func (s *Store) AddOutgoing(ctx context.Context, m chat.Message) error {
	if err := checkPeer(m.Peer); err != nil {
		return err
	}
	n, err := changed(s.w.ExecContext(ctx, `
		INSERT INTO messages (id, peer_id, direction, text, sent_at, state, stored_at)
		VALUES (?, ?, 'out', ?, ?, 'queued', ?)
		ON CONFLICT DO NOTHING`,
		m.ID[:], m.Peer.String(), m.Text, m.SentAt.UnixMilli(), time.Now().UnixMilli()))
	switch {
	case err != nil:
		return fmt.Errorf("store: add outgoing %s: %w", m.ID, err)
	case n == 0:
		return fmt.Errorf("store: add outgoing %s: an outgoing message with this ID is already stored", m.ID)
	}
	return nil
}

// MarkDelivered moves our message id to delivered. It returns an error
// wrapping chat.ErrNotFound when we sent no message with that ID; marking a
// delivered message again changes nothing and writes nothing.
func (s *Store) MarkDelivered(ctx context.Context, id chat.MessageID) error {
	return s.markOut(ctx, id, chat.StateDelivered)
}

// MarkFailed moves a queued outgoing message to failed (the receiver
// refused it). Marking it again is not an error.
func (s *Store) MarkFailed(ctx context.Context, id chat.MessageID) error {
	return s.markOut(ctx, id, chat.StateFailed)
}

// markOut moves a queued outgoing message to state.
func (s *Store) markOut(ctx context.Context, id chat.MessageID, state chat.State) error {
	n, err := changed(s.w.ExecContext(ctx, `UPDATE messages SET state = ?
		WHERE direction = 'out' AND id = ? AND state = 'queued'`, string(state), id[:]))
	if err != nil {
		return fmt.Errorf("store: mark %s %s: %w", state, id, err)
	}
	if n > 0 {
		return nil
	}
	var found bool
	err = s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM messages
		WHERE direction = 'out' AND id = ?)`, id[:]).Scan(&found)
	switch {
	case err != nil:
		return fmt.Errorf("store: mark %s %s: %w", state, id, err)
	case !found:
		return fmt.Errorf("%w: %s", chat.ErrNotFound, id)
	}
	return nil
}

// Outbox returns the queued outgoing messages, oldest first: for peer p, or
// for every peer when p is empty.
func (s *Store) Outbox(ctx context.Context, p peer.ID) ([]chat.Message, error) {
	q := query{where: []string{`state = 'queued'`}}
	if p != "" {
		q.and(`peer_id = ?`, p.String())
	}
	return s.messages(ctx, q)
}

// Messages returns the stored messages f selects, oldest (lowest Seq) first.
// A negative f.Limit is an error.
func (s *Store) Messages(ctx context.Context, f chat.Filter) ([]chat.Message, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("store: messages: negative limit %d", f.Limit)
	}
	q := query{limit: f.Limit}
	if f.Peer != "" {
		q.and(`peer_id = ?`, f.Peer.String())
	}
	if f.AfterSeq > 0 {
		q.and(`seq > ?`, f.AfterSeq)
	}
	return s.messages(ctx, q)
}

// query is a SELECT on messages being put together.
type query struct {
	where []string
	args  []any
	limit int // 0: none
}

func (q *query) and(cond string, arg any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, arg)
}

func (q query) sql() string {
	var b strings.Builder
	b.WriteString(`SELECT seq, id, peer_id, direction, text, sent_at, state FROM messages`)
	if len(q.where) > 0 {
		b.WriteString(` WHERE ` + strings.Join(q.where, ` AND `))
	}
	b.WriteString(` ORDER BY seq`)
	if q.limit > 0 {
		fmt.Fprintf(&b, ` LIMIT %d`, q.limit)
	}
	return b.String()
}

func (s *Store) messages(ctx context.Context, q query) ([]chat.Message, error) {
	rows, err := s.r.QueryContext(ctx, q.sql(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: messages: %w", err)
	}
	defer rows.Close()
	var out []chat.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: messages: %w", err)
	}
	return out, nil
}

func scanMessage(rows *sql.Rows) (chat.Message, error) {
	var (
		m         chat.Message
		id        []byte
		p, dir    string
		sentAt    int64
		stateText string
	)
	if err := rows.Scan(&m.Seq, &id, &p, &dir, &m.Text, &sentAt, &stateText); err != nil {
		return m, fmt.Errorf("store: read message: %w", err)
	}
	if len(id) != len(m.ID) {
		return m, fmt.Errorf("store: read message %d: stored ID has %d bytes", m.Seq, len(id))
	}
	copy(m.ID[:], id)
	var err error
	if m.Peer, err = peer.Decode(p); err != nil {
		return m, fmt.Errorf("store: read message %d: stored peer ID %q: %w", m.Seq, p, err)
	}
	m.Out, m.SentAt, m.State = dir == "out", time.UnixMilli(sentAt), chat.State(stateText)
	return m, nil
}
