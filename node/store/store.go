package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// File is the name of the database inside a kith home.
const File = "kith.db"

// BusyTimeout is how long a statement waits for a lock another process holds
// on the file before it fails with SQLITE_BUSY. Inside one process writes
// queue for the single write connection and never meet a lock.
const BusyTimeout = 10 * time.Second

// ErrNewerSchema is wrapped by Open's error for a file whose schema is newer
// than this binary knows: "store: PATH was written by a newer kith (schema N > M)".
var ErrNewerSchema = errors.New("written by a newer kith")

// Store is kith's database. It is safe for concurrent use.
type Store struct {
	w *sql.DB // one connection: every write, in order
	r *sql.DB // read-only connections, concurrent with the writer under WAL

	closeOnce sync.Once
	closeErr  error
}

var _ chat.Store = (*Store)(nil)

// Open opens the database at path, creating it (mode 0600) when it is
// missing, and brings its schema up to date. The directory must exist. An
// existing file readable by group or others is made 0600. A file written by
// a newer kith is refused with an error wrapping ErrNewerSchema.
func Open(path string) (*Store, error) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	return open(context.Background(), path, migs)
}

func open(ctx context.Context, path string, migs []migration) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("store: %w", err) // a *fs.PathError: names the file
	}
	w, err := openPool(ctx, abs, 1, "_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := setup(ctx, w, path, migs); err != nil {
		w.Close()
		return nil, err
	}
	r, err := openPool(ctx, abs, max(4, runtime.GOMAXPROCS(0)), "_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Store{w: w, r: r}, nil
}

// setup checks the schema version, turns on WAL (a setting kept in the file)
// and applies the migrations the file lacks.
func setup(ctx context.Context, w *sql.DB, path string, migs []migration) error {
	v, err := userVersion(ctx, w)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if v > len(migs) {
		return fmt.Errorf("store: %s was %w (schema %d > %d)", path, ErrNewerSchema, v, len(migs))
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: journal_mode: %w", path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("store: open %s: journal_mode is %q, not wal", path, mode)
	}
	if err := migrate(ctx, w, migs); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	return nil
}

// openPool opens a pool of at most n connections to the file at abs. Every
// connection gets the same per-connection pragmas, plus extra DSN parameters.
func openPool(ctx context.Context, abs string, n int, extra ...string) (*sql.DB, error) {
	params := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(FULL)",
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: strings.Join(append(params, extra...), "&")}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // file:///C:/... on Windows
	}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepareFile creates the database file with mode 0600, so that SQLite (which
// gives its -wal and -shm files the main file's mode) never makes it world
// readable, and syncs the directory so the new entry survives power loss. An
// existing file, and its -wal and -shm, lose any group and other permissions.
func prepareFile(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err := f.Close(); err != nil {
			return err
		}
		return syncDir(filepath.Dir(abs))
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != abs {
			continue
		}
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the database. It is safe to call more than once; later calls
// return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Readers first: the last connection to close checkpoints the WAL
		// into the main file, and that should be the writer.
		if err := errors.Join(s.r.Close(), s.w.Close()); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// tx runs fn in one write transaction (BEGIN IMMEDIATE, on the write
// connection) and commits it; with synchronous=FULL the commit is on disk
// when tx returns.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// changed runs one write statement and reports how many rows it changed.
func changed(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// checkPeer refuses an empty peer ID, and one that is not a multihash: its
// text form would be stored but could not be decoded when read back.
func checkPeer(p peer.ID) error {
	return wrapErr(peerProblem(p), "store: %w")
}

// peerProblem is checkPeer's error without the "store: " prefix.
func peerProblem(p peer.ID) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("peer ID: %w", err)
	}
	if _, err := peer.IDFromBytes([]byte(p)); err != nil {
		return fmt.Errorf("%q is not a peer ID: %w", p.String(), err)
	}
	return nil
}
