package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestLoadIdentityCreatesOnceAndKeeps(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	k1, created, err := LoadIdentity(home)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(home, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o, want 600", st.Mode().Perm())
	}
	if hs, _ := os.Stat(home); hs.Mode().Perm() != 0o700 {
		t.Fatalf("home mode %o, want 700", hs.Mode().Perm())
	}
	k2, created, err := LoadIdentity(home)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	id1, _ := peer.IDFromPrivateKey(k1)
	id2, _ := peer.IDFromPrivateKey(k2)
	if id1 != id2 {
		t.Fatalf("identity changed: %s then %s", id1, id2)
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v", k1.Type())
	}
}

func TestLoadIdentityRefusesReadableKey(t *testing.T) {
	home := t.TempDir()
	if _, _, err := LoadIdentity(home); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, IdentityFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadIdentity(home)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %o: err = %v, want ErrKeyPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("error does not say how to fix it: %v", err)
		}
	}
}

func TestLoadIdentityRefusesCorruptAndNonEd25519(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, IdentityFile)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadIdentity(home); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt key: %v", err)
	}
	k, _, _ := crypto.GenerateSecp256k1Key(nil)
	b, _ := crypto.MarshalPrivateKey(k)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadIdentity(home); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Fatalf("secp256k1 key: %v", err)
	}
}

func TestLockHome(t *testing.T) {
	home := t.TempDir()
	l1, err := LockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockHome(home)
	if !errors.Is(err, ErrHomeInUse) {
		t.Fatalf("second lock: %v, want ErrHomeInUse", err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	l1.Unlock() // safe twice
	l3, err := LockHome(home)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l3.Unlock()
}

func TestEventsSubscribeAndSlowSubscriberDropped(t *testing.T) {
	e := newEvents()
	fast, cancelFast := e.Subscribe()
	defer cancelFast()
	slow, cancelSlow := e.Subscribe()
	defer cancelSlow()
	for i := range eventBufSize + 1 {
		e.Publish(Event{Type: EventAddrsChanged})
		if i < eventBufSize {
			<-fast
		}
	}
	<-fast // the last event reached the subscriber that keeps up
	n := 0
	for range slow {
		n++
	}
	if n != eventBufSize {
		t.Fatalf("slow subscriber got %d events before being dropped, want %d", n, eventBufSize)
	}
	e.Close()
	if _, ok := <-fast; ok {
		t.Fatal("subscription open after Close")
	}
}
