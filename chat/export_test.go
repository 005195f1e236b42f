package chat

import "time"

// What the rendezvous tests watch and tune.
type (
	RendezvousEvent  = rendezvousEvent
	RendezvousTiming = rendezvousTiming
)

const (
	RendezvousAdvertised = rendezvousAdvertised
	RendezvousLookup     = rendezvousLookup
	RendezvousFound      = rendezvousFound
	RendezvousDialled    = rendezvousDialled
	RendezvousStopped    = rendezvousStopped
)

// WithRendezvousHook registers f, called for everything a room's
// rendezvous does.
func WithRendezvousHook(f func(RendezvousEvent)) RoomOption {
	return func(s *RoomService) { s.rdv.hook = f }
}

// WithRendezvousTiming replaces the rendezvous schedule.
func WithRendezvousTiming(t RendezvousTiming) RoomOption {
	return func(s *RoomService) { s.rdv.timing = t }
}

// RenewAfter is when an advertisement that lives ttl is renewed.
func RenewAfter(ttl time.Duration) time.Duration { return renewAfter(ttl) }

// HistorySyncRounds is how many exchanges one history sync has with a
// member.
const HistorySyncRounds = historySyncRounds
