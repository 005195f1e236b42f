package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newStore opens a fresh store in a temporary directory, closed at cleanup.
func newStore(tb testing.TB) (*Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), File)
	s, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

// newPeer returns a fresh Ed25519 peer ID.
func newPeer(tb testing.TB) peer.ID {
	tb.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// msg is a message from or to p with a fresh ID.
func msg(p peer.ID, text string) chat.Message {
	return chat.Message{
		ID:     chat.NewMessageID(),
		Peer:   p,
		Text:   text,
		SentAt: time.UnixMilli(1_700_000_000_123),
	}
}

func mustAddIncoming(t *testing.T, s *Store, m chat.Message) {
	t.Helper()
	added, err := s.AddIncoming(t.Context(), m)
	if err != nil || !added {
		t.Fatalf("AddIncoming(%s) = %v, %v; want true, nil", m.ID, added, err)
	}
}

func mustAddOutgoing(t *testing.T, s *Store, m chat.Message) {
	t.Helper()
	if err := s.AddOutgoing(t.Context(), m); err != nil {
		t.Fatalf("AddOutgoing(%s): %v", m.ID, err)
	}
}

// pragma reads one pragma's value on db's connection.
func pragma(ctx context.Context, tb testing.TB, q querier, name string) string {
	tb.Helper()
	var v string
	if err := q.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		tb.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// texts lists the texts of ms, in order.
func texts(ms []chat.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}
