package store

import (
	"path/filepath"
	"testing"

	"github.com/kithnet/kith/chat"
)

// A file written by a kith that knew only schema 1 gets the transfers tables
// when a newer kith opens it, and keeps its messages.
func TestMigrateFromSchema1(t *testing.T) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil || len(migs) < 2 {
		t.Fatalf("embedded migrations: %d, %v", len(migs), err)
	}
	path := filepath.Join(t.TempDir(), File)
	old, err := open(t.Context(), path, migs[:1])
	if err != nil {
		t.Fatal(err)
	}
	mustAddIncoming(t, old, msg(newPeer(t), "from before transfers"))
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	checkSchema(t, path, 1, []string{"contacts", "messages", "sqlite_sequence"})

	s, err := Open(path)
	if err != nil {
		t.Fatalf("open a schema 1 file: %v", err)
	}
	defer s.Close()
	ms, err := s.Messages(t.Context(), chat.Filter{})
	if err != nil || len(ms) != 1 || ms[0].Text != "from before transfers" {
		t.Errorf("messages after migrating: %+v, %v", ms, err)
	}
	checkSchema(t, path, len(migs),
		[]string{"contacts", "messages", "sqlite_sequence", "transfer_manifests", "transfers"})
}
