package chat_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/libp2p/go-libp2p/core/peer"
)

// memStore is an in-memory chat.Store for tests. Its indexes keep every
// method but Messages independent of how many messages it holds, so a
// benchmark over thousands of messages measures the protocol, not the store.
type memStore struct {
	mu     sync.Mutex
	msgs   []chat.Message
	seq    int64
	in     map[inKey]bool         // incoming messages stored
	out    map[chat.MessageID]int // index of each outgoing message in msgs
	queued []int                  // indexes of queued outgoing messages, oldest first
}

type inKey struct {
	p  peer.ID
	id chat.MessageID
}

var _ chat.Store = (*memStore)(nil)

func (s *memStore) AddIncoming(_ context.Context, m chat.Message) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := inKey{m.Peer, m.ID}
	if s.in[k] {
		return false, nil
	}
	if s.in == nil {
		s.in = make(map[inKey]bool)
	}
	s.in[k] = true
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
	if s.out == nil {
		s.out = make(map[chat.MessageID]int)
	}
	s.out[m.ID] = len(s.msgs)
	s.queued = append(s.queued, len(s.msgs))
	s.add(m)
	return nil
}

func (s *memStore) setState(id chat.MessageID, st chat.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.out[id]
	if !ok {
		return chat.ErrNotFound
	}
	s.msgs[i].State = st
	s.queued = slices.DeleteFunc(s.queued, func(j int) bool { return j == i })
	return nil
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
	for _, i := range s.queued {
		if m := s.msgs[i]; p == "" || m.Peer == p {
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

// waitBound bounds every wait of a test on an event: a broken test fails
// after it instead of hanging until the test binary's timeout.
const waitBound = time.Minute
