package chat_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// memRoomStore is an in-memory chat.RoomStore for tests.
type memRoomStore struct {
	mu      sync.Mutex
	rooms   map[string]chat.Room
	msgs    []chat.RoomMessage
	held    map[roomKey]map[uint64]int // seqs held per (room, author): their index in msgs
	hw      map[roomKey]uint64         // the highest seq held per (room, author)
	floor   map[string]int64
	joining map[string]bool
}

type roomKey struct {
	room   string
	author peer.ID
}

var _ chat.RoomStore = (*memRoomStore)(nil)

func newMemRoomStore() *memRoomStore {
	return &memRoomStore{rooms: map[string]chat.Room{}, held: map[roomKey]map[uint64]int{},
		hw: map[roomKey]uint64{}}
}

func (s *memRoomStore) SaveRoom(_ context.Context, r chat.Room) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rooms[r.Name] = r
	return nil
}

func (s *memRoomStore) DeleteRoom(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rooms, name)
	return nil
}

func (s *memRoomStore) Rooms(context.Context) ([]chat.Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.Room
	for _, r := range s.rooms {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *memRoomStore) AddRoomMessage(_ context.Context, m chat.RoomMessage) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := roomKey{m.Room, m.Author}
	if _, ok := s.held[k][m.Seq]; ok {
		return false, nil
	}
	if s.held[k] == nil {
		s.held[k] = map[uint64]int{}
	}
	s.held[k][m.Seq] = len(s.msgs)
	s.hw[k] = max(s.hw[k], m.Seq)
	s.msgs = append(s.msgs, m)
	return true, nil
}

func (s *memRoomStore) AddRoomMessages(ctx context.Context, ms []chat.RoomMessage) ([]bool, error) {
	added := make([]bool, len(ms))
	for _, m := range ms {
		if m.Seq == 0 {
			return nil, fmt.Errorf("memstore: room message %s in %q: seq 0", m.Author, m.Room) // before any is stored
		}
	}
	for i, m := range ms {
		added[i], _ = s.AddRoomMessage(ctx, m)
	}
	return added, nil
}

func (s *memRoomStore) HasRoomMessage(_ context.Context, room string, a peer.ID, seq uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[roomKey{room, a}][seq]
	return ok, nil
}

func (s *memRoomStore) HighWater(_ context.Context, room string, a peer.ID) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hw[roomKey{room, a}], nil
}

func (s *memRoomStore) RoomMessages(_ context.Context, f chat.RoomFilter) ([]chat.RoomMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.RoomMessage
	for _, m := range s.msgs {
		if m.Room != f.Room || !m.ReceivedAt.After(f.After) || (f.Signed && len(m.Raw) == 0) ||
			(f.ClockAtMost > 0 && m.Clock > f.ClockAtMost) || (f.ClockAtLeast > 0 && m.Clock < f.ClockAtLeast) {
			continue
		}
		if !(protocols.HistoryHave{Through: f.Above[m.Author], Held: f.Held[m.Author]}).Lacks(m.Seq) {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, chat.RoomOrder)
	if f.Limit > 0 && len(out) > f.Limit {
		if f.Oldest {
			out = out[:f.Limit]
		} else {
			out = out[len(out)-f.Limit:]
		}
	}
	return out, nil
}

func (s *memRoomStore) RoomFloor(_ context.Context, room string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.floor[room], nil
}

func (s *memRoomStore) RoomJoining(_ context.Context, room string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joining[room], nil
}

func (s *memRoomStore) SetRoomJoining(_ context.Context, room string, joining bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.joining == nil {
		s.joining = map[string]bool{}
	}
	if joining {
		s.joining[room] = true
	} else {
		delete(s.joining, room)
	}
	return nil
}

func (s *memRoomStore) SetRoomFloor(_ context.Context, room string, clock int64) error {
	if clock < 1 {
		return fmt.Errorf("floor %d", clock)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.floor == nil {
		s.floor = map[string]int64{}
	}
	s.floor[room] = clock
	return nil
}

func (s *memRoomStore) SetRoomMessageSigned(_ context.Context, room string, a peer.ID, seq uint64, id string, raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.held[roomKey{room, a}][seq]; ok && len(s.msgs[i].Raw) == 0 {
		s.msgs[i].ID, s.msgs[i].Raw = id, raw
	}
	return nil
}

func (s *memRoomStore) Unpublished(_ context.Context, room string, a peer.ID) ([]chat.RoomMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.RoomMessage
	for _, m := range s.msgs {
		if m.Room == room && m.Author == a && len(m.Raw) == 0 {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(x, y chat.RoomMessage) int { return int(x.Seq) - int(y.Seq) })
	return out, nil
}

func (s *memRoomStore) HighWaters(_ context.Context, room string) (map[peer.ID]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[peer.ID]uint64{}
	for k, hw := range s.hw {
		if k.room == room {
			out[k.author] = hw
		}
	}
	return out, nil
}

func (s *memRoomStore) RoomGaps(_ context.Context, room string) ([]chat.Gap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gaps []chat.Gap
	for k, held := range s.held {
		if k.room != room {
			continue
		}
		seqs := make([]uint64, 0, len(held))
		for seq := range held {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		next := uint64(1)
		for _, seq := range seqs {
			if seq > next {
				gaps = append(gaps, chat.Gap{Author: k.author, From: next, To: seq - 1})
			}
			next = seq + 1
		}
	}
	sort.Slice(gaps, func(i, j int) bool {
		if gaps[i].Author != gaps[j].Author {
			return gaps[i].Author < gaps[j].Author
		}
		return gaps[i].From < gaps[j].From
	})
	return gaps, nil
}

// all returns every message held, in the order stored.
func (s *memRoomStore) all() []chat.RoomMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}
