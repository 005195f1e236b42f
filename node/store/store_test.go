package store

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestOpenFreshAndReopen(t *testing.T) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil || len(migs) == 0 {
		t.Fatalf("embedded migrations: %d, %v", len(migs), err)
	}
	path := filepath.Join(t.TempDir(), File)
	for i := range 3 {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if v, err := userVersion(t.Context(), s.w); err != nil || v != len(migs) {
			t.Errorf("open #%d: user_version %d, %v; want %d", i+1, v, err, len(migs))
		}
		var tables int
		err = s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema
			WHERE type = 'table' AND name IN ('contacts', 'messages')`).Scan(&tables)
		if err != nil || tables != 2 {
			t.Errorf("open #%d: %d of the 2 tables, %v", i+1, tables, err)
		}
		if i == 0 { // a row written once must still be there after reopening
			mustAddIncoming(t, s, msg(newPeer(t), "kept"))
		}
		if ms, err := s.Messages(t.Context(), chat.Filter{}); err != nil || len(ms) != 1 {
			t.Errorf("open #%d: %d messages, %v; want 1", i+1, len(ms), err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
}

func TestOpenFileMode(t *testing.T) {
	s, path := newStore(t)
	mustAddIncoming(t, s, msg(newPeer(t), "hello")) // makes the -wal and -shm files
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), st.Mode().Perm())
		}
	}
}

func TestOpenTightensLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}
}

// Every connection, reader or writer, must run with the pragmas that make a
// returned write durable and keep concurrent writers from failing.
func TestOpenPragmas(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	want := map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1",
		"busy_timeout": fmt.Sprint(BusyTimeout.Milliseconds()),
	}
	for i := range 4 { // hold them all, so each is a different connection
		db, kind := s.r, "reader"
		if i == 0 {
			db, kind = s.w, "writer"
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close() // held until the end
		for name, v := range want {
			if got := pragma(ctx, t, c, name); got != v {
				t.Errorf("%s %d: %s = %s, want %s", kind, i, name, got, v)
			}
		}
		if got, wantQO := pragma(ctx, t, c, "query_only"), map[bool]string{true: "0", false: "1"}[i == 0]; got != wantQO {
			t.Errorf("%s %d: query_only = %s, want %s", kind, i, got, wantQO)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	_, path := newStore(t) // closed at cleanup; a second handle below is fine under WAL
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a file with schema 99")
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Errorf("error %v does not wrap ErrNewerSchema", err)
	}
	migs, _ := loadMigrations(migrationFiles)
	if want := fmt.Sprintf("kith.db was written by a newer kith (schema 99 > %d)", len(migs)); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not sqlite ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"missing directory", filepath.Join(dir, "nope", File), "no such file or directory"},
		{"not a database", garbage, "not a database"},
		{"a directory", dir, "store: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("Open: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	const (
		one   = "CREATE TABLE a (x INTEGER) STRICT;"
		two   = "CREATE TABLE b (x INTEGER) STRICT; INSERT INTO a VALUES (1);"
		wrong = "CREATE TABLE c (x INTEGER); INSERT INTO nowhere VALUES (1);"
	)
	tests := []struct {
		name        string
		files       map[string]string
		wantErr     string // from loading or opening; "" for success
		wantVersion int
		wantTables  []string
	}{
		{"in order", map[string]string{"0001_a.sql": one, "0002_b.sql": two}, "", 2, []string{"a", "b"}},
		{"gap", map[string]string{"0001_a.sql": one, "0003_b.sql": two}, "0003_b.sql: want a name starting 0002_", 0, nil},
		{"unnumbered", map[string]string{"init.sql": one}, "init.sql: want a name starting 0001_", 0, nil},
		{"failing step rolls back", map[string]string{"0001_a.sql": one, "0002_c.sql": wrong},
			"migration 0002_c.sql", 1, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, text := range tt.files {
				fsys["migrations/"+name] = &fstest.MapFile{Data: []byte(text)}
			}
			path := filepath.Join(t.TempDir(), File)
			err := openWith(t, path, fsys)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("open: %v, want error containing %q", err, tt.wantErr)
			}
			if tt.wantErr == "" { // applying again is a no-op
				if err := openWith(t, path, fsys); err != nil {
					t.Fatalf("reopen: %v", err)
				}
			}
			checkSchema(t, path, tt.wantVersion, tt.wantTables)
		})
	}
}

func openWith(t *testing.T, path string, fsys fstest.MapFS) error {
	migs, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	s, err := open(t.Context(), path, migs)
	if err != nil {
		return err
	}
	return s.Close()
}

func checkSchema(t *testing.T, path string, version int, tables []string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := userVersion(t.Context(), db); err != nil || v != version {
		t.Errorf("user_version %d, %v; want %d", v, err, version)
	}
	var got string
	err = db.QueryRowContext(t.Context(), `SELECT coalesce(group_concat(name, ','), '')
		FROM (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name)`).Scan(&got)
	if err != nil || got != strings.Join(tables, ",") {
		t.Errorf("tables %q, %v; want %q", got, err, strings.Join(tables, ","))
	}
}

func TestCloseTwice(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.AddIncoming(t.Context(), msg(newPeer(t), "late")); err == nil {
		t.Error("AddIncoming after Close succeeded")
	}
}

// Many goroutines writing at once, with readers alongside, must all succeed:
// writes queue for the one write connection instead of failing with
// SQLITE_BUSY. Two Stores on one file (as two processes would be) share
// through the busy timeout.
func TestConcurrentWriters(t *testing.T) {
	const goroutines, each = 8, 200
	s, path := newStore(t)
	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*2)
	for g := range goroutines {
		st := []*Store{s, other}[g%2]
		p := newPeer(t)
		wg.Go(func() { errs <- writeMany(t, st, p, each) })
		wg.Go(func() { errs <- readMany(t, st, p, each/10) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ms, err := s.Messages(t.Context(), chat.Filter{})
	if err != nil || len(ms) != goroutines*each {
		t.Fatalf("%d messages, %v; want %d", len(ms), err, goroutines*each)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Seq <= ms[i-1].Seq {
			t.Fatalf("seq not increasing: %d then %d", ms[i-1].Seq, ms[i].Seq)
		}
	}
}

func writeMany(t *testing.T, s *Store, p peer.ID, n int) error {
	for i := range n {
		if added, err := s.AddIncoming(t.Context(), msg(p, fmt.Sprint(i))); err != nil || !added {
			return fmt.Errorf("AddIncoming %d from %s: %v, %v", i, p, added, err)
		}
	}
	return nil
}

func readMany(t *testing.T, s *Store, p peer.ID, n int) error {
	for range n {
		if _, err := s.Messages(t.Context(), chat.Filter{Peer: p, Limit: 50}); err != nil {
			return err
		}
	}
	return nil
}
