package files

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// memStore is an in-memory Store for tests; it survives a service restart
// when the test keeps it.
type memStore struct {
	mu sync.Mutex
	ts []Transfer
}

var _ Store = (*memStore)(nil)

func clone(t Transfer) Transfer {
	t.Manifest = slices.Clone(t.Manifest)
	t.Verified = slices.Clone(t.Verified)
	t.Secret = slices.Clone(t.Secret)
	t.Sources = slices.Clone(t.Sources)
	t.Names = slices.Clone(t.Names)
	return t
}

func (s *memStore) CreateTransfer(_ context.Context, t Transfer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.ts {
		if o.ID == t.ID || t.Direction == In && t.RemoteID != (TransferID{}) && o.Direction == In && o.Peer == t.Peer && o.RemoteID == t.RemoteID {
			return fmt.Errorf("memstore: transfer %s exists", t.ID)
		}
	}
	t.CreatedAt, t.UpdatedAt = time.Now(), time.Now()
	s.ts = append(s.ts, clone(t))
	return nil
}

func (s *memStore) find(id TransferID) int {
	for i, t := range s.ts {
		if t.ID == id {
			return i
		}
	}
	return -1
}

func (s *memStore) Transfer(_ context.Context, id TransferID) (Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(id); i >= 0 {
		return clone(s.ts[i]), nil
	}
	return Transfer{}, ErrNoTransfer
}

func (s *memStore) TransferByRemote(_ context.Context, p peer.ID, remote TransferID) (Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.ts {
		if t.Direction == In && t.Peer == p && t.RemoteID == remote {
			return clone(t), nil
		}
	}
	return Transfer{}, ErrNoTransfer
}

func (s *memStore) Transfers(_ context.Context, f Filter) ([]Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transfer
	for i := len(s.ts) - 1; i >= 0; i-- {
		t := s.ts[i]
		if f.Direction != "" && t.Direction != f.Direction || f.Peer != "" && t.Peer != f.Peer ||
			len(f.States) > 0 && !slices.Contains(f.States, t.State) {
			continue
		}
		t = clone(t)
		t.Manifest, t.Verified = nil, nil
		out = append(out, t)
	}
	return out, nil
}

func (s *memStore) UpdateTransfer(_ context.Context, id TransferID, u Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return ErrNoTransfer
	}
	t := &s.ts[i]
	set(&t.State, u.State)
	set(&t.Dir, u.Dir)
	set(&t.Overwrite, u.Overwrite)
	set(&t.DoneBytes, u.DoneBytes)
	set(&t.Path, u.Path)
	set(&t.Relay, u.Relay)
	set(&t.Error, u.Error)
	set(&t.Notified, u.Notified)
	set(&t.Peer, u.Peer)
	if u.Names != nil {
		t.Names = slices.Clone(u.Names)
	}
	if u.Verified != nil {
		t.Verified = slices.Clone(u.Verified)
	}
	t.UpdatedAt = time.Now()
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
