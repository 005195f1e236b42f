package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// waitBound bounds every wait on an event, so that a broken test fails
// rather than hangs.
const waitBound = time.Minute

// tnode is a host with a files service, its store and its events. The store
// and key survive restart.
type tnode struct {
	key   crypto.PrivKey
	store *memStore
	cfg   Config
	opts  []Option // the service's, besides WithOnEvent
	h     host.Host
	svc   *Service

	mu     sync.Mutex
	events []Event
	signal chan struct{}
}

func newNode(t *testing.T, cfg Config, opts ...libp2p.Option) *tnode {
	t.Helper()
	return newNodeWith(t, cfg, nil, opts...)
}

// newNodeWith is newNode with options for the files service.
func newNodeWith(t *testing.T, cfg Config, svcOpts []Option, opts ...libp2p.Option) *tnode {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(nil)
	n := &tnode{key: key, store: &memStore{}, cfg: cfg, opts: svcOpts, signal: make(chan struct{}, 1)}
	n.start(t, opts...)
	return n
}

func (n *tnode) start(t *testing.T, opts ...libp2p.Option) {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.Identity(n.key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(h, n.store, n.cfg, append([]Option{WithOnEvent(n.onEvent)}, n.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n.h, n.svc = h, svc
	t.Cleanup(func() { svc.Close(); h.Close() })
}

// stop closes the service and the host, as a crash would, minus the disk.
func (n *tnode) stop() {
	n.svc.Close()
	n.h.Close()
}

func (n *tnode) onEvent(e Event) {
	n.mu.Lock()
	n.events = append(n.events, e)
	n.mu.Unlock()
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// know tells a about b's addresses and b about a's.
func know(a, b *tnode) {
	a.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), peerstore.PermanentAddrTTL)
	b.h.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), peerstore.PermanentAddrTTL)
}

// waitFor waits until f holds for the stored transfer id, checking again
// after every event.
func (n *tnode) waitFor(t *testing.T, id TransferID, what string, f func(Transfer) bool) Transfer {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		tr, err := n.store.Transfer(context.Background(), id)
		if err == nil && f(tr) {
			return tr
		}
		select {
		case <-n.signal:
		case <-deadline:
			t.Fatalf("transfer %s: gave up waiting for %s; it is %s (%s)", id, what, tr.State, tr.Error)
		}
	}
}

func (n *tnode) waitState(t *testing.T, id TransferID, states ...State) Transfer {
	t.Helper()
	return n.waitFor(t, id, "state "+string(states[0]), func(tr Transfer) bool {
		for _, s := range states {
			if tr.State == s {
				return true
			}
		}
		return false
	})
}

// waitOffer waits for the first offer event and returns its transfer.
func (n *tnode) waitOffer(t *testing.T) Transfer {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		n.mu.Lock()
		for _, e := range n.events {
			if e.Kind == EventOffer {
				n.mu.Unlock()
				return e.Transfer
			}
		}
		n.mu.Unlock()
		select {
		case <-n.signal:
		case <-deadline:
			t.Fatal("gave up waiting for an offer")
		}
	}
}

// randomFile writes size random bytes to path.
func randomFile(t testing.TB, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// tree reads every file and directory under root: relative path → content
// (nil for a directory).
func tree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = nil
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test unless got holds exactly want's files and
// directories with the same bytes.
func sameTree(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing", p)
		case (w == nil) != (g == nil):
			t.Errorf("%s: a file on one side, a directory on the other", p)
		case !bytes.Equal(w, g):
			t.Errorf("%s: %d bytes received, %d sent, or different bytes", p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: received but never sent", p)
		}
	}
}
