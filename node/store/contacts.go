package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxContactName is the longest contact name, in characters (runes).
const MaxContactName = 64

// Contact errors.
var (
	ErrNameTaken = errors.New("store: contact name is taken")
	ErrPeerTaken = errors.New("store: peer is already a contact")
	ErrNoContact = errors.New("store: no such contact")
	ErrBadName   = errors.New("store: bad contact name")
)

// Contact is a peer the user knows by a name of their choosing (a petname),
// or, with an empty Name, a blocked stranger (see SetBlocked).
type Contact struct {
	Name    string
	PeerID  peer.ID
	Addrs   []ma.Multiaddr // addresses to try first, may be empty
	Trusted bool
	Blocked bool
	AddedAt time.Time // millisecond precision; zero in AddContact means now
}

// ValidContactName reports, wrapping ErrBadName, why name cannot name a
// contact. A name has 1 to MaxContactName characters: letters (with their
// combining marks), digits, '-', '_' and '.', not starting with '.' or '-'.
// It must not look like a peer ID or a ticket, which a PEER argument could
// also be.
func ValidContactName(name string) error {
	if why := nameProblem(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrBadName, name, why)
	}
	return nil
}

func nameProblem(name string) string {
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		return "empty"
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case n > MaxContactName:
		return fmt.Sprintf("%d characters, more than %d", n, MaxContactName)
	}
	for i, r := range name {
		if why := runeProblem(i == 0, r); why != "" {
			return why
		}
	}
	switch _, err := peer.Decode(name); {
	case strings.HasPrefix(name, "12D3KooW"), strings.HasPrefix(name, "Qm"), err == nil:
		return "looks like a peer ID"
	case len(name) >= len(protocols.TicketPrefix) &&
		strings.EqualFold(name[:len(protocols.TicketPrefix)], protocols.TicketPrefix):
		return "looks like a ticket"
	}
	return ""
}

func runeProblem(first bool, r rune) string {
	switch {
	case first && (r == '.' || r == '-'):
		return fmt.Sprintf("starts with %q", r)
	case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_', r == '.':
		return ""
	case !first && unicode.IsMark(r): // é as e + U+0301, Devanagari vowel signs
		return ""
	case unicode.IsControl(r):
		return fmt.Sprintf("control character %U", r)
	case unicode.IsSpace(r):
		return "contains a space"
	}
	return fmt.Sprintf("%q is not a letter, digit, '-', '_' or '.'", r)
}

// AddContact adds c. Its name must be valid and free (ErrNameTaken), and its
// peer must not be a contact already (ErrPeerTaken, naming the contact). A
// blocked stranger becomes the named contact and stays blocked.
func (s *Store) AddContact(ctx context.Context, c Contact) error {
	if err := ValidContactName(c.Name); err != nil {
		return err
	}
	if err := checkPeer(c.PeerID); err != nil {
		return err
	}
	addrs, err := encodeAddrs(c.Addrs)
	if err != nil {
		return err
	}
	if c.AddedAt.IsZero() {
		c.AddedAt = time.Now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFree(ctx, tx, c.Name, c.PeerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO contacts (peer_id, name, addrs, trusted, blocked, added_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name, addrs = excluded.addrs,
				trusted = excluded.trusted, added_at = excluded.added_at`,
			c.PeerID.String(), c.Name, addrs, c.Trusted, c.Blocked, c.AddedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: add contact %q: %w", c.Name, err)
		}
		return nil
	})
}

// checkFree fails unless p has no named row and name is not in use.
func checkFree(ctx context.Context, tx *sql.Tx, name string, p peer.ID) error {
	var old sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT name FROM contacts WHERE peer_id = ?`, p.String()).Scan(&old)
	switch {
	case err == nil && old.Valid:
		return fmt.Errorf("%w: %s is %q", ErrPeerTaken, p, old.String)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: add contact %q: %w", name, err)
	}
	var taken bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM contacts WHERE name = ?)`, name).Scan(&taken)
	switch {
	case err != nil:
		return fmt.Errorf("store: add contact %q: %w", name, err)
	case taken:
		return fmt.Errorf("%w: %q", ErrNameTaken, name)
	}
	return nil
}

const contactCols = `name, peer_id, addrs, trusted, blocked, added_at`

// Contacts returns the named contacts sorted by name, then the blocked
// strangers sorted by peer ID.
func (s *Store) Contacts(ctx context.Context) ([]Contact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+contactCols+` FROM contacts
		ORDER BY name IS NULL, name, peer_id`)
	if err != nil {
		return nil, fmt.Errorf("store: contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: contacts: %w", err)
	}
	return out, nil
}

// ContactByName returns the contact called name, or ErrNoContact.
func (s *Store) ContactByName(ctx context.Context, name string) (Contact, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+contactCols+` FROM contacts WHERE name = ?`, name)
	c, err := scanContact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	return c, err
}

// ContactByPeer returns p's row: a named contact or a blocked stranger (empty
// Name). It returns ErrNoContact when p has neither.
func (s *Store) ContactByPeer(ctx context.Context, p peer.ID) (Contact, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+contactCols+` FROM contacts WHERE peer_id = ?`, p.String())
	c, err := scanContact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("%w: %s", ErrNoContact, p)
	}
	return c, err
}

// RemoveContact forgets the contact called name (ErrNoContact if there is
// none). A blocked contact stays blocked, as a nameless row.
func (s *Store) RemoveContact(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := changed(tx.ExecContext(ctx, `DELETE FROM contacts WHERE name = ? AND NOT blocked`, name))
		if err != nil || n > 0 {
			return wrapErr(err, "store: remove contact %q: %w", name)
		}
		n, err = changed(tx.ExecContext(ctx, `UPDATE contacts
			SET name = NULL, addrs = '[]', trusted = 0 WHERE name = ?`, name))
		if err == nil && n == 0 {
			return fmt.Errorf("%w: %q", ErrNoContact, name)
		}
		return wrapErr(err, "store: remove contact %q: %w", name)
	})
}

// SetContactAddrs replaces the addresses kept for contact p with addrs,
// the last it was seen listening on. It does nothing for a peer that is not
// a contact (a blocked stranger is not dialled) or whose addresses are
// already addrs, and reports whether it changed them.
func (s *Store) SetContactAddrs(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) (bool, error) {
	if err := checkPeer(p); err != nil {
		return false, err
	}
	js, err := encodeAddrs(addrs)
	if err != nil {
		return false, err
	}
	n, err := changed(s.w.ExecContext(ctx, `
		UPDATE contacts SET addrs = ? WHERE peer_id = ? AND name IS NOT NULL AND addrs != ?`,
		js, p.String(), js))
	return n > 0, wrapErr(err, "store: set addresses of %s: %w", p)
}

// SetTrusted marks the contact called name trusted or not (ErrNoContact if
// there is none).
func (s *Store) SetTrusted(ctx context.Context, name string, trusted bool) error {
	n, err := changed(s.w.ExecContext(ctx, `UPDATE contacts SET trusted = ? WHERE name = ?`, trusted, name))
	if err == nil && n == 0 {
		return fmt.Errorf("%w: %q", ErrNoContact, name)
	}
	return wrapErr(err, "store: set trusted %q: %w", name)
}

// SetBlocked blocks or unblocks p. Blocking a peer that is not a contact
// keeps it as a nameless row (a blocked stranger); unblocking one deletes
// that row. Unblocking a peer that is not blocked does nothing.
func (s *Store) SetBlocked(ctx context.Context, p peer.ID, blocked bool) error {
	if err := checkPeer(p); err != nil {
		return err
	}
	if blocked {
		_, err := s.w.ExecContext(ctx, `
			INSERT INTO contacts (peer_id, name, addrs, trusted, blocked, added_at)
			VALUES (?, NULL, '[]', 0, 1, ?)
			ON CONFLICT (peer_id) DO UPDATE SET blocked = 1`, p.String(), time.Now().UnixMilli())
		return wrapErr(err, "store: block %s: %w", p)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM contacts WHERE peer_id = ? AND name IS NULL`, p.String())
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE contacts SET blocked = 0 WHERE peer_id = ?`, p.String())
		}
		return wrapErr(err, "store: unblock %s: %w", p)
	})
}

// BlockedPeers returns every blocked peer, contact or not, sorted.
func (s *Store) BlockedPeers(ctx context.Context) ([]peer.ID, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT peer_id FROM contacts WHERE blocked ORDER BY peer_id`)
	if err != nil {
		return nil, fmt.Errorf("store: blocked peers: %w", err)
	}
	defer rows.Close()
	var out []peer.ID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: blocked peers: %w", err)
		}
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("store: blocked peers: stored peer ID %q: %w", s, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: blocked peers: %w", err)
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanContact(sc scanner) (Contact, error) {
	var (
		c       Contact
		name    sql.NullString
		p, js   string
		addedAt int64
	)
	if err := sc.Scan(&name, &p, &js, &c.Trusted, &c.Blocked, &addedAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return c, err
		}
		return c, fmt.Errorf("store: read contact: %w", err)
	}
	id, err := peer.Decode(p)
	if err != nil {
		return c, fmt.Errorf("store: read contact %q: stored peer ID %q: %w", name.String, p, err)
	}
	addrs, err := decodeAddrs(js)
	if err != nil {
		return c, fmt.Errorf("store: read contact %q: %w", name.String, err)
	}
	c.Name, c.PeerID, c.Addrs, c.AddedAt = name.String, id, addrs, time.UnixMilli(addedAt)
	return c, nil
}

// encodeAddrs turns addrs into the JSON array of strings kept in the addrs
// column.
func encodeAddrs(addrs []ma.Multiaddr) (string, error) {
	ss := make([]string, 0, len(addrs))
	for i, a := range addrs {
		if len(a) == 0 {
			return "", fmt.Errorf("store: contact address %d is empty", i)
		}
		ss = append(ss, a.String())
	}
	b, err := json.Marshal(ss)
	return string(b), err
}

func decodeAddrs(js string) ([]ma.Multiaddr, error) {
	var ss []string
	if err := json.Unmarshal([]byte(js), &ss); err != nil {
		return nil, fmt.Errorf("stored addresses: %w", err)
	}
	var out []ma.Multiaddr
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("stored address %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// wrapErr is fmt.Errorf(format, args..., err), or nil when err is nil.
func wrapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, append(args, err)...)
}
