package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// created is the CreatedAt of test transfers: a time with nanoseconds, of
// which the store keeps the milliseconds.
var created = time.Date(2026, 3, 1, 12, 30, 45, 123_456_789, time.UTC)

// newTransfer is a minimal valid transfer with p, with fresh IDs.
func newTransfer(p peer.ID, dir files.Direction) files.Transfer {
	var content protocols.Hash
	rand.Read(content[:])
	return files.Transfer{ID: files.NewTransferID(), Peer: p, Direction: dir,
		State: files.StateOffered, ContentID: content, CreatedAt: created}
}

// fullTransfer is an incoming transfer with every field set.
func fullTransfer(tb testing.TB) files.Transfer {
	t := newTransfer(newPeer(tb), files.In)
	t.RemoteID, t.State, t.Ticket = files.NewTransferID(), files.StatePaused, true
	t.Manifest, t.Secret = []byte("manifest\x00bytes"), []byte{1, 2, 3}
	t.Sources = []string{"/home/ana/Фото/été 🙂.jpg", `C:\Users\ana\"quoted"\<b>`}
	t.Dir, t.Names, t.Overwrite = "/home/ben/Téléchargements", []string{"été 🙂.jpg", "日本語 (1)", ""}, true
	t.Files, t.Bytes, t.DoneBytes, t.Verified = 7, 1<<40, 1<<39, []byte{0xff, 0x01, 0x00}
	t.Path, t.Relay, t.Error, t.Notified = "relayed", newPeer(tb), "disk full\nretrying", true
	t.UpdatedAt = created.Add(90 * time.Minute)
	return t
}

func mustCreate(tb testing.TB, s *Store, t files.Transfer) {
	tb.Helper()
	if err := s.CreateTransfer(tb.Context(), t); err != nil {
		tb.Fatalf("CreateTransfer: %v", err)
	}
}

// stored is t as the store returns it: times to the millisecond, in UTC.
func stored(t files.Transfer) files.Transfer {
	t.CreatedAt = t.CreatedAt.Truncate(time.Millisecond).UTC()
	t.UpdatedAt = t.UpdatedAt.Truncate(time.Millisecond).UTC()
	return t
}

// listed is t as Transfers returns it.
func listed(t files.Transfer) files.Transfer {
	t = stored(t)
	t.Manifest, t.Verified = nil, nil
	return t
}

// checkSame fails unless got (in any time zone) is want.
func checkSame(t *testing.T, what string, got, want files.Transfer) {
	t.Helper()
	got.CreatedAt, got.UpdatedAt = got.CreatedAt.UTC(), got.UpdatedAt.UTC()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() { // field by field, with %#v: nil and empty differ
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: %s is %#v, want %#v", what, g.Type().Field(i).Name, g.Field(i), w.Field(i))
		}
	}
}

func TestTransferRoundTrip(t *testing.T) {
	p := newPeer(t)
	full := fullTransfer(t)
	empty := newTransfer(p, files.Out) // empty, not nil: must come back empty
	empty.Manifest, empty.Secret, empty.Verified = []byte{}, []byte{}, []byte{}
	empty.Sources, empty.Names = []string{}, []string{}
	empty.UpdatedAt = created.Add(time.Millisecond)
	tests := []struct {
		name string
		t    files.Transfer
	}{
		{"every field", full},
		{"nil slices", func() files.Transfer { t := newTransfer(p, files.Out); t.UpdatedAt = created; return t }()},
		{"empty slices", empty},
	}
	s, _ := newStore(t)
	ctx := t.Context()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCreate(t, s, tt.t)
			got, err := s.Transfer(ctx, tt.t.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, "Transfer", got, stored(tt.t))
			ts, err := s.Transfers(ctx, files.Filter{Peer: tt.t.Peer, Direction: tt.t.Direction})
			i := slices.IndexFunc(ts, func(l files.Transfer) bool { return l.ID == tt.t.ID })
			if err != nil || i < 0 {
				t.Fatalf("Transfers: %d transfers, not this one, %v", len(ts), err)
			}
			checkSame(t, "Transfers", ts[i], listed(tt.t))
		})
	}
	got, err := s.TransferByRemote(ctx, full.Peer, full.RemoteID)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "TransferByRemote", got, stored(full))
}

func TestCreateTransferDefaultTimes(t *testing.T) {
	s, _ := newStore(t)
	tr := newTransfer(newPeer(t), files.Out)
	tr.CreatedAt = time.Time{}
	before := time.Now().Truncate(time.Millisecond)
	mustCreate(t, s, tr)
	got, err := s.Transfer(t.Context(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now()) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("CreatedAt %v, UpdatedAt %v; want now, and equal", got.CreatedAt, got.UpdatedAt)
	}
}

func TestTransfersFilterAndOrder(t *testing.T) {
	s, _ := newStore(t)
	ana, ben := newPeer(t), newPeer(t)
	var all []files.Transfer // in the order Transfers lists them
	for i, st := range []files.State{files.StateOffered, files.StateActive, files.StatePaused,
		files.StateDone, files.StateFailed, files.StateRejected, files.StateActive, files.StateActive} {
		tr := newTransfer([]peer.ID{ana, ben}[i%2], []files.Direction{files.In, files.Out}[i/2%2])
		tr.State, tr.Manifest, tr.Verified = st, []byte("m"), []byte{1}
		tr.CreatedAt = created.Add(time.Duration(i/3) * time.Second) // ties: ordered by ID
		tr.UpdatedAt = tr.CreatedAt
		mustCreate(t, s, tr)
		all = append(all, listed(tr))
	}
	newestFirst(all)
	tests := []struct {
		name string
		f    files.Filter
		keep func(files.Transfer) bool
	}{
		{"all", files.Filter{}, func(files.Transfer) bool { return true }},
		{"in", files.Filter{Direction: files.In}, func(t files.Transfer) bool { return t.Direction == files.In }},
		{"out", files.Filter{Direction: files.Out}, func(t files.Transfer) bool { return t.Direction == files.Out }},
		{"ana", files.Filter{Peer: ana}, func(t files.Transfer) bool { return t.Peer == ana }},
		{"active", files.Filter{States: []files.State{files.StateActive}},
			func(t files.Transfer) bool { return t.State == files.StateActive }},
		{"not final, ben, out", files.Filter{Peer: ben, Direction: files.Out,
			States: []files.State{files.StateOffered, files.StateActive, files.StatePaused}},
			func(t files.Transfer) bool { return t.Peer == ben && t.Direction == files.Out && !t.State.Final() }},
		{"nobody", files.Filter{Peer: newPeer(t)}, func(files.Transfer) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Transfers(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var want []files.Transfer
			for _, tr := range all {
				if tt.keep(tr) {
					want = append(want, tr)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d transfers, want %d", len(got), len(want))
			}
			for i := range got {
				checkSame(t, fmt.Sprint("transfer ", i), got[i], want[i]) // no manifest, no bitmap
			}
		})
	}
}

// newestFirst sorts ts as Transfers lists them: by CreatedAt, then ID,
// descending.
func newestFirst(ts []files.Transfer) {
	slices.SortFunc(ts, func(a, b files.Transfer) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
}

func TestTransfersBadFilter(t *testing.T) {
	s, _ := newStore(t)
	for _, f := range []files.Filter{{Direction: "sideways"}, {States: []files.State{files.StateDone, "lost"}}} {
		if ts, err := s.Transfers(t.Context(), f); err == nil || !strings.HasPrefix(err.Error(), "store: transfers: ") {
			t.Errorf("Transfers(%+v) = %d, %v; want an error", f, len(ts), err)
		}
	}
}

func TestCreateTransferDuplicates(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	first := fullTransfer(t)
	mustCreate(t, s, first)
	sameID := newTransfer(newPeer(t), files.Out)
	sameID.ID = first.ID
	sameRemote := newTransfer(first.Peer, files.In)
	sameRemote.RemoteID = first.RemoteID
	for _, tt := range []struct {
		name   string
		t      files.Transfer
		saying string
	}{
		{"same ID", sameID, "the ID is taken"},
		{"same peer and remote ID", sameRemote, first.Peer.String() + " already offered one with ID " + first.RemoteID.String()},
	} {
		err := s.CreateTransfer(ctx, tt.t)
		if !errors.Is(err, ErrTransferExists) || !strings.Contains(err.Error(), tt.saying) ||
			!strings.HasPrefix(err.Error(), "store: create transfer "+tt.t.ID.String()+": ") {
			t.Errorf("%s: %v, want ErrTransferExists saying %q", tt.name, err, tt.saying)
		}
	}
	if got, err := s.Transfer(ctx, first.ID); err != nil || !reflect.DeepEqual(got.Manifest, first.Manifest) {
		t.Errorf("after the refused duplicates: %+v, %v", got, err)
	}
	// Not duplicates: the same remote ID from another peer, or outgoing, and
	// several incoming transfers without a remote ID (tickets).
	other := newTransfer(newPeer(t), files.In)
	other.RemoteID = first.RemoteID
	out1, out2 := newTransfer(first.Peer, files.Out), newTransfer(first.Peer, files.Out)
	out1.RemoteID, out2.RemoteID = first.RemoteID, first.RemoteID
	for _, tr := range []files.Transfer{other, out1, out2, newTransfer(first.Peer, files.In), newTransfer(first.Peer, files.In)} {
		mustCreate(t, s, tr)
	}
}

func TestCreateTransferInvalid(t *testing.T) {
	s, _ := newStore(t)
	p := newPeer(t)
	tests := []struct {
		name   string
		change func(*files.Transfer)
		saying string
	}{
		{"zero ID", func(t *files.Transfer) { t.ID = files.TransferID{} }, "zero ID"},
		{"zero content ID", func(t *files.Transfer) { t.ContentID = protocols.Hash{} }, "zero content ID"},
		{"no direction", func(t *files.Transfer) { t.Direction = "" }, `direction ""`},
		{"bad state", func(t *files.Transfer) { t.State = "lost" }, `unknown state "lost"`},
		{"no peer", func(t *files.Transfer) { t.Peer = "" }, "empty peer ID"},
		{"not a peer", func(t *files.Transfer) { t.Peer = "garbage" }, "is not a peer ID"},
		{"not a relay", func(t *files.Transfer) { t.Relay = "garbage" }, "relay: "},
		{"source not UTF-8", func(t *files.Transfer) { t.Sources = []string{"ok", "caf\xe9"} }, "source 1"},
		{"name not UTF-8", func(t *files.Transfer) { t.Names = []string{"\xff"} }, "name 0"},
		{"negative size", func(t *files.Transfer) { t.Bytes = -1 }, "CHECK constraint failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTransfer(p, files.In)
			tt.change(&tr)
			err := s.CreateTransfer(t.Context(), tr)
			if err == nil || !strings.HasPrefix(err.Error(), "store: create transfer ") || !strings.Contains(err.Error(), tt.saying) {
				t.Errorf("CreateTransfer: %v, want an error saying %q", err, tt.saying)
			}
		})
	}
	if ts, err := s.Transfers(t.Context(), files.Filter{}); err != nil || len(ts) != 0 {
		t.Errorf("refused transfers were stored: %d, %v", len(ts), err)
	}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

func TestUpdateTransferEachField(t *testing.T) {
	relay := newPeer(t)
	tests := []struct {
		name   string
		u      files.Update
		change func(*files.Transfer)
	}{
		{"nothing", files.Update{}, func(*files.Transfer) {}},
		{"state", files.Update{State: ptr(files.StateDone)}, func(t *files.Transfer) { t.State = files.StateDone }},
		{"dir", files.Update{Dir: ptr("/tmp/ünï")}, func(t *files.Transfer) { t.Dir = "/tmp/ünï" }},
		{"dir empty", files.Update{Dir: ptr("")}, func(t *files.Transfer) { t.Dir = "" }},
		{"names", files.Update{Names: []string{"a (2)", "🙂"}}, func(t *files.Transfer) { t.Names = []string{"a (2)", "🙂"} }},
		{"names empty", files.Update{Names: []string{}}, func(t *files.Transfer) { t.Names = []string{} }},
		{"overwrite", files.Update{Overwrite: ptr(false)}, func(t *files.Transfer) { t.Overwrite = false }},
		{"done bytes", files.Update{DoneBytes: ptr(int64(1 << 40))}, func(t *files.Transfer) { t.DoneBytes = 1 << 40 }},
		{"verified", files.Update{Verified: []byte{0, 0xff}}, func(t *files.Transfer) { t.Verified = []byte{0, 0xff} }},
		{"verified empty", files.Update{Verified: []byte{}}, func(t *files.Transfer) { t.Verified = []byte{} }},
		{"path", files.Update{Path: ptr("direct")}, func(t *files.Transfer) { t.Path = "direct" }},
		{"relay", files.Update{Relay: &relay}, func(t *files.Transfer) { t.Relay = relay }},
		{"no relay", files.Update{Relay: ptr(peer.ID(""))}, func(t *files.Transfer) { t.Relay = "" }},
		{"error", files.Update{Error: ptr("peer gone")}, func(t *files.Transfer) { t.Error = "peer gone" }},
		{"notified", files.Update{Notified: ptr(false)}, func(t *files.Transfer) { t.Notified = false }},
	}
	s, _ := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := fullTransfer(t)
			mustCreate(t, s, tr)
			before := time.Now().Truncate(time.Millisecond)
			if err := s.UpdateTransfer(t.Context(), tr.ID, tt.u); err != nil {
				t.Fatal(err)
			}
			got, err := s.Transfer(t.Context(), tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now()) {
				t.Errorf("UpdatedAt %v, want now", got.UpdatedAt)
			}
			want := stored(tr)
			tt.change(&want)
			want.UpdatedAt = got.UpdatedAt.UTC()
			checkSame(t, "after the update", got, want)
		})
	}
}

func TestTransferErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	tr := fullTransfer(t)
	mustCreate(t, s, tr)
	missing := files.NewTransferID()
	tests := []struct {
		name   string
		do     func() error
		want   error
		saying string
	}{
		{"transfer", func() error { _, err := s.Transfer(ctx, missing); return err },
			files.ErrNoTransfer, "store: transfer " + missing.String() + ": files: no such transfer"},
		{"by remote", func() error { _, err := s.TransferByRemote(ctx, tr.Peer, missing); return err },
			files.ErrNoTransfer, "offered by " + tr.Peer.String()},
		{"by remote, other peer", func() error { _, err := s.TransferByRemote(ctx, newPeer(t), tr.RemoteID); return err },
			files.ErrNoTransfer, ""},
		{"by remote, own ID", func() error { _, err := s.TransferByRemote(ctx, tr.Peer, tr.ID); return err },
			files.ErrNoTransfer, ""},
		{"update", func() error { return s.UpdateTransfer(ctx, missing, files.Update{Path: ptr("direct")}) },
			files.ErrNoTransfer, "store: update transfer " + missing.String() + ": files: no such transfer"},
		{"update nothing", func() error { return s.UpdateTransfer(ctx, missing, files.Update{}) },
			files.ErrNoTransfer, ""},
		{"bad state", func() error { return s.UpdateTransfer(ctx, tr.ID, files.Update{State: ptr(files.State("x"))}) },
			nil, "store: update transfer " + tr.ID.String() + `: unknown state "x"`},
		{"bad relay", func() error { return s.UpdateTransfer(ctx, tr.ID, files.Update{Relay: ptr(peer.ID("x"))}) },
			nil, "relay: "},
		{"bad names", func() error { return s.UpdateTransfer(ctx, tr.ID, files.Update{Names: []string{"\xff"}}) },
			nil, "name 0"},
		{"negative done", func() error { return s.UpdateTransfer(ctx, tr.ID, files.Update{DoneBytes: ptr(int64(-1))}) },
			nil, "CHECK constraint failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.saying) {
				t.Errorf("got %v, want %v saying %q", err, tt.want, tt.saying)
			}
		})
	}
	got, err := s.Transfer(ctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "after the failed updates", got, stored(tr))
}

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
		[]string{"contacts", "messages", "room_floors", "room_joins", "room_messages", "rooms", "sqlite_sequence", "transfer_manifests", "transfers"})
	tr := fullTransfer(t)
	mustCreate(t, s, tr)
	if err := s.UpdateTransfer(t.Context(), tr.ID, files.Update{State: ptr(files.StateDone)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Transfer(t.Context(), tr.ID); err != nil || got.State != files.StateDone {
		t.Errorf("transfer after migrating: %+v, %v", got, err)
	}
}
