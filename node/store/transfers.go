package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrTransferExists is files.ErrTransferExists, wrapped by CreateTransfer's
// error for a transfer whose ID is already stored, or, incoming, whose peer
// already offered a stored transfer under the same RemoteID.
var ErrTransferExists = files.ErrTransferExists

var _ files.Store = (*Store)(nil)

// states are the transfer states the schema admits.
var states = []files.State{files.StateOffered, files.StateActive, files.StatePaused,
	files.StateDone, files.StateFailed, files.StateRejected}

// CreateTransfer stores t (see files.Store), durably when it returns. The ID
// and ContentID must not be zero, Peer must be a peer ID, and Direction and
// State known values. A zero RemoteID means none. A zero CreatedAt means now,
// a zero UpdatedAt means CreatedAt; both are kept to the millisecond. Nil and
// empty slices are told apart when read back. Sources and Names must be
// valid UTF-8: they are kept as JSON.
func (s *Store) CreateTransfer(ctx context.Context, t files.Transfer) error {
	args, err := insertArgs(t)
	if err != nil {
		return fmt.Errorf("store: create transfer %s: %w", t.ID, err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := changed(tx.ExecContext(ctx, insertTransfer, args...))
		if err == nil && n == 0 {
			err = conflict(ctx, tx, t)
		}
		if err == nil && t.Manifest != nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO transfer_manifests (transfer_id, manifest)
				VALUES (?, ?)`, t.ID[:], t.Manifest)
		}
		return wrapErr(err, "store: create transfer %s: %w", t.ID)
	})
}

const insertTransfer = `INSERT INTO transfers (id, remote_id, peer_id, direction, state, ticket,
	content_id, secret, sources, dir, names, overwrite, files, bytes, done_bytes,
	path, relay, error, notified, created_at, updated_at, verified)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING`

// insertArgs checks t and returns insertTransfer's arguments.
func insertArgs(t files.Transfer) ([]any, error) {
	if err := checkTransfer(t); err != nil {
		return nil, err
	}
	sources, err := encodeStrings("source", t.Sources)
	if err != nil {
		return nil, err
	}
	names, err := encodeStrings("name", t.Names)
	if err != nil {
		return nil, err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	var remote []byte // NULL for none
	if t.RemoteID != (files.TransferID{}) {
		remote = t.RemoteID[:]
	}
	return []any{t.ID[:], remote, t.Peer.String(), string(t.Direction), string(t.State), t.Ticket,
		t.ContentID[:], t.Secret, sources, t.Dir, names, t.Overwrite, t.Files, t.Bytes, t.DoneBytes,
		t.Path, relayText(t.Relay), t.Error, t.Notified, t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(),
		t.Verified}, nil
}

func checkTransfer(t files.Transfer) error {
	switch {
	case t.ID == files.TransferID{}:
		return errors.New("zero ID")
	case t.ContentID == protocols.Hash{}:
		return errors.New("zero content ID")
	}
	if err := checkDirection(t.Direction); err != nil {
		return err
	}
	if err := checkState(t.State); err != nil {
		return err
	}
	if err := peerProblem(t.Peer); err != nil {
		return err
	}
	return checkRelay(t.Relay)
}

func checkDirection(d files.Direction) error {
	if d != files.In && d != files.Out {
		return fmt.Errorf("direction %q is neither %q nor %q", d, files.In, files.Out)
	}
	return nil
}

func checkState(st files.State) error {
	if !slices.Contains(states, st) {
		return fmt.Errorf("unknown state %q", st)
	}
	return nil
}

// checkRelay accepts no relay, or a peer ID.
func checkRelay(p peer.ID) error {
	if p == "" {
		return nil
	}
	return wrapErr(peerProblem(p), "relay: %w")
}

// relayText is p's text form, "" for none.
func relayText(p peer.ID) string {
	if p == "" {
		return ""
	}
	return p.String()
}

// conflict says which stored transfer kept t from being inserted.
func conflict(ctx context.Context, tx *sql.Tx, t files.Transfer) error {
	var taken bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM transfers WHERE id = ?)`, t.ID[:]).Scan(&taken)
	switch {
	case err != nil:
		return err
	case taken:
		return fmt.Errorf("%w: the ID is taken", ErrTransferExists)
	}
	return fmt.Errorf("%w: %s already offered one with ID %s", ErrTransferExists, t.Peer, t.RemoteID)
}

// Transfer returns the transfer with ID id, manifest and bitmap included, or
// an error wrapping files.ErrNoTransfer.
func (s *Store) Transfer(ctx context.Context, id files.TransferID) (files.Transfer, error) {
	t, err := s.transfer(ctx, `t.id = ?`, id[:])
	if errors.Is(err, sql.ErrNoRows) {
		err = files.ErrNoTransfer
	}
	return t, wrapErr(err, "store: transfer %s: %w", id)
}

// TransferByRemote returns the incoming transfer p offered with ID remote,
// manifest and bitmap included, or an error wrapping files.ErrNoTransfer.
func (s *Store) TransferByRemote(ctx context.Context, p peer.ID, remote files.TransferID) (files.Transfer, error) {
	t, err := s.transfer(ctx, `t.direction = 'in' AND t.peer_id = ? AND t.remote_id = ?`, p.String(), remote[:])
	if errors.Is(err, sql.ErrNoRows) {
		err = files.ErrNoTransfer
	}
	return t, wrapErr(err, "store: transfer %s offered by %s: %w", remote, p)
}

func (s *Store) transfer(ctx context.Context, where string, args ...any) (files.Transfer, error) {
	var r transferRow
	err := s.r.QueryRowContext(ctx, `SELECT `+transferCols+`, `+bigCols+`
		FROM transfers t LEFT JOIN transfer_manifests m ON m.transfer_id = t.id
		WHERE `+where, args...).Scan(r.dests(true)...)
	if err != nil {
		return files.Transfer{}, err
	}
	t, err := r.transfer()
	if err != nil {
		return files.Transfer{}, err
	}
	return t, nil
}

// Transfers lists the transfers f selects, newest (CreatedAt, then ID) first.
// It leaves Manifest and Verified out (nil): it reads only the small columns.
// An unknown direction or state in f is an error.
func (s *Store) Transfers(ctx context.Context, f files.Filter) ([]files.Transfer, error) {
	where, args, err := transferFilter(f)
	if err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+transferCols+` FROM transfers t`+where+`
		ORDER BY t.created_at DESC, t.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	defer rows.Close()
	var out []files.Transfer
	for rows.Next() {
		var r transferRow
		if err := rows.Scan(r.dests(false)...); err != nil {
			return nil, fmt.Errorf("store: transfers: %w", err)
		}
		t, err := r.transfer()
		if err != nil {
			return nil, fmt.Errorf("store: transfers: transfer %s: %w", t.ID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: transfers: %w", err)
	}
	return out, nil
}

// transferFilter returns the WHERE clause (or "") and arguments for f.
func transferFilter(f files.Filter) (string, []any, error) {
	var conds []string
	var args []any
	if f.Direction != "" {
		if err := checkDirection(f.Direction); err != nil {
			return "", nil, err
		}
		conds, args = append(conds, `t.direction = ?`), append(args, string(f.Direction))
	}
	if len(f.States) > 0 {
		for _, st := range f.States {
			if err := checkState(st); err != nil {
				return "", nil, err
			}
			args = append(args, string(st))
		}
		conds = append(conds, `t.state IN (?`+strings.Repeat(`, ?`, len(f.States)-1)+`)`)
	}
	if f.Peer != "" {
		conds, args = append(conds, `t.peer_id = ?`), append(args, f.Peer.String())
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args, nil
}

// UpdateTransfer sets the fields of u that are not nil, and UpdatedAt to
// now, in one statement, durably when it returns. A transfer that is not
// stored is an error wrapping files.ErrNoTransfer.
func (s *Store) UpdateTransfer(ctx context.Context, id files.TransferID, u files.Update) error {
	set, err := updateSet(u)
	if err != nil {
		return fmt.Errorf("store: update transfer %s: %w", id, err)
	}
	set.add("updated_at", time.Now().UnixMilli())
	n, err := changed(s.w.ExecContext(ctx, `UPDATE transfers SET `+strings.Join(set.cols, `, `)+`
		WHERE id = ?`, append(set.args, id[:])...))
	if err == nil && n == 0 {
		err = files.ErrNoTransfer
	}
	return wrapErr(err, "store: update transfer %s: %w", id)
}

// setter is the SET clause of an UPDATE being put together.
type setter struct {
	cols []string // "col = ?"
	args []any
}

func (s *setter) add(col string, arg any) {
	s.cols, s.args = append(s.cols, col+` = ?`), append(s.args, arg)
}

// updateSet checks u and turns its set fields into a setter.
func updateSet(u files.Update) (setter, error) {
	var s setter
	if u.State != nil {
		if err := checkState(*u.State); err != nil {
			return s, err
		}
		s.add("state", string(*u.State))
	}
	if u.Peer != nil {
		if err := checkPeer(*u.Peer); err != nil {
			return s, err
		}
		s.add("peer_id", u.Peer.String())
	}
	if u.Relay != nil {
		if err := checkRelay(*u.Relay); err != nil {
			return s, err
		}
		s.add("relay", relayText(*u.Relay))
	}
	if u.Names != nil {
		names, err := encodeStrings("name", u.Names)
		if err != nil {
			return s, err
		}
		s.add("names", names)
	}
	if u.Verified != nil {
		s.add("verified", u.Verified)
	}
	addPlain(&s, u)
	return s, nil
}

// addPlain adds the fields of u that need no checking.
func addPlain(s *setter, u files.Update) {
	if u.Dir != nil {
		s.add("dir", *u.Dir)
	}
	if u.Overwrite != nil {
		s.add("overwrite", *u.Overwrite)
	}
	if u.DoneBytes != nil {
		s.add("done_bytes", *u.DoneBytes)
	}
	if u.Path != nil {
		s.add("path", *u.Path)
	}
	if u.Error != nil {
		s.add("error", *u.Error)
	}
	if u.Notified != nil {
		s.add("notified", *u.Notified)
	}
}

// transferCols are the columns a listing reads: all but the bitmap and the
// manifest. A blob comes with a flag that it is not NULL: the driver reads
// an empty blob as nil.
const transferCols = `t.id, t.remote_id, t.peer_id, t.direction, t.state, t.ticket,
	t.content_id, t.secret, t.secret IS NOT NULL, t.sources, t.dir, t.names, t.overwrite,
	t.files, t.bytes, t.done_bytes, t.path, t.relay, t.error, t.notified, t.created_at, t.updated_at`

// bigCols are the columns Transfer reads too, from transfers t LEFT JOIN
// transfer_manifests m.
const bigCols = `t.verified, t.verified IS NOT NULL, m.manifest, m.manifest IS NOT NULL`

// transferRow receives a row of transferCols (and bigCols).
type transferRow struct {
	t                                   files.Transfer // the fields scanned as they are
	id, remote, content                 []byte
	peer, direction, state, relay       string
	sources, names                      sql.NullString
	created, updated                    int64
	secret, verified, manifest          []byte
	hasSecret, hasVerified, hasManifest bool
}

// dests are Scan's destinations for transferCols, and bigCols if big.
func (r *transferRow) dests(big bool) []any {
	d := []any{&r.id, &r.remote, &r.peer, &r.direction, &r.state, &r.t.Ticket,
		&r.content, &r.secret, &r.hasSecret, &r.sources, &r.t.Dir, &r.names, &r.t.Overwrite,
		&r.t.Files, &r.t.Bytes, &r.t.DoneBytes, &r.t.Path, &r.relay, &r.t.Error, &r.t.Notified,
		&r.created, &r.updated}
	if big {
		d = append(d, &r.verified, &r.hasVerified, &r.manifest, &r.hasManifest)
	}
	return d
}

// transfer decodes the scanned row. The schema's CHECKs guarantee the sizes
// of the IDs.
func (r *transferRow) transfer() (files.Transfer, error) {
	t := r.t
	copy(t.ID[:], r.id)
	copy(t.RemoteID[:], r.remote) // NULL: stays zero
	copy(t.ContentID[:], r.content)
	t.Direction, t.State = files.Direction(r.direction), files.State(r.state)
	t.Secret, t.Verified, t.Manifest = blob(r.secret, r.hasSecret),
		blob(r.verified, r.hasVerified), blob(r.manifest, r.hasManifest)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(r.created), time.UnixMilli(r.updated)
	var errs [4]error
	t.Peer, errs[0] = peer.Decode(r.peer)
	if r.relay != "" {
		t.Relay, errs[1] = peer.Decode(r.relay)
	}
	t.Sources, errs[2] = decodeStrings(r.sources)
	t.Names, errs[3] = decodeStrings(r.names)
	if err := errors.Join(errs[:]...); err != nil {
		return t, fmt.Errorf("stored row: %w", err) // t: for its ID
	}
	return t, nil
}

// blob is b as stored: nil for NULL, empty (not nil) for an empty blob.
func blob(b []byte, notNull bool) []byte {
	switch {
	case !notNull:
		return nil
	case b == nil:
		return []byte{}
	}
	return b
}

// encodeStrings turns ss into a JSON array, or NULL (nil) when ss is nil.
// JSON would replace invalid UTF-8 with U+FFFD, so that is refused.
func encodeStrings(what string, ss []string) (any, error) {
	if ss == nil {
		return nil, nil
	}
	for i, s := range ss {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%s %d (%q) is not valid UTF-8", what, i, s)
		}
	}
	b, err := json.Marshal(ss)
	return string(b), err
}

// decodeStrings reads a column encodeStrings wrote.
func decodeStrings(js sql.NullString) ([]string, error) {
	if !js.Valid {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal([]byte(js.String), &ss); err != nil {
		return nil, fmt.Errorf("stored JSON array: %w", err)
	}
	return ss, nil
}
