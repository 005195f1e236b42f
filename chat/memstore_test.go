package chat_test

import (
	"context"
	"slices"
	"sync"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// memStore is an in-memory chat.Store for tests.
type memStore struct {
	mu   sync.Mutex
	msgs []chat.Message
	seq  int64
}

var _ chat.Store = (*memStore)(nil)

func (s *memStore) AddIncoming(_ context.Context, m chat.Message) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.msgs {
		if !o.Out && o.ID == m.ID && o.Peer == m.Peer {
			return false, nil
		}
	}
	s.add(m)
	return true, nil
}

func (s *memStore) add(m chat.Message) {
	s.seq++
	m.Seq = s.seq
	s.msgs = append(s.msgs, m)
}

func (s *memStore) AddOutgoing(_ context.Context, m chat.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(m)
	return nil
}

func (s *memStore) setState(id chat.MessageID, st chat.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs {
		if s.msgs[i].Out && s.msgs[i].ID == id {
			s.msgs[i].State = st
			return nil
		}
	}
	return chat.ErrNotFound
}

func (s *memStore) MarkDelivered(_ context.Context, id chat.MessageID) error {
	return s.setState(id, chat.StateDelivered)
}

func (s *memStore) MarkFailed(_ context.Context, id chat.MessageID) error {
	return s.setState(id, chat.StateFailed)
}

func (s *memStore) Outbox(_ context.Context, p peer.ID) ([]chat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.Message
	for _, m := range s.msgs {
		if m.Out && m.State == chat.StateQueued && (p == "" || m.Peer == p) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) Messages(_ context.Context, f chat.Filter) ([]chat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.Message
	for _, m := range s.msgs {
		if (f.Peer == "" || m.Peer == f.Peer) && m.Seq > f.AfterSeq {
			out = append(out, m)
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return slices.Clone(out), nil
}

// received returns the incoming messages stored.
func (s *memStore) received() []chat.Message {
	ms, _ := s.Messages(context.Background(), chat.Filter{})
	return slices.DeleteFunc(ms, func(m chat.Message) bool { return m.Out })
}
