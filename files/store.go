package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TransferID is a transfer's random 128-bit identity. In a transfer offered
// with Send it is the sender's, and the receiver keeps it as RemoteID.
type TransferID [16]byte

// NewTransferID returns a fresh random ID.
func NewTransferID() TransferID {
	var id TransferID
	rand.Read(id[:])
	return id
}

// String is the ID in lowercase hex (32 characters).
func (id TransferID) String() string { return hex.EncodeToString(id[:]) }

// ParseTransferID parses the hex form of an ID.
func ParseTransferID(s string) (TransferID, error) {
	var id TransferID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("files: %q is not a transfer ID (32 hex digits)", s)
	}
	copy(id[:], b)
	return id, nil
}

// Direction says which way a transfer goes.
type Direction string

// Directions.
const (
	In  Direction = "in"  // we receive
	Out Direction = "out" // we send
)

// State is where a transfer stands.
type State string

// Transfer states.
const (
	StateOffered  State = "offered"  // in: waiting for accept/reject; out: offered, not accepted yet
	StateActive   State = "active"   // accepted; chunks are moving or will as soon as the peer is reachable
	StatePaused   State = "paused"   // accepted, stopped by an error that a retry may cure (disk full, peer gone)
	StateDone     State = "done"     // received, verified and renamed into place (out: the receiver said so)
	StateFailed   State = "failed"   // stopped for good (see Error)
	StateRejected State = "rejected" // the receiver declined the offer
)

// Final reports whether nothing more will happen to a transfer in state s.
func (s State) Final() bool { return s == StateDone || s == StateFailed || s == StateRejected }

// Transfer is one transfer as files stores and reports it.
type Transfer struct {
	ID        TransferID
	RemoteID  TransferID // in, offered with Send: the sender's ID (zero for tickets)
	Peer      peer.ID    // the other side
	Direction Direction
	State     State
	Ticket    bool // served for / fetched with a ticket (secret) rather than offered

	ContentID protocols.Hash // BLAKE3 of Manifest
	Manifest  []byte         // the manifest's bytes, exactly as on the wire
	Secret    []byte         // ticket mode: the secret a receiver must present

	Sources   []string // out: the absolute path of each top-level item, in manifest order
	Dir       string   // in: the folder received into
	Names     []string // in: the final name chosen for each top-level item, in manifest order
	Overwrite bool     // in: replace existing files of the same name

	Files     int    // number of files (not directories) in the manifest
	Bytes     int64  // total bytes of the files
	DoneBytes int64  // bytes verified (in) or acknowledged as verified (out)
	Verified  []byte // in: bitmap of verified chunks, numbered across entries in manifest order (bit i = byte i/8, 1<<(i%8))

	Path      string  // last path used: "direct", "relayed" or ""
	Relay     peer.ID // the relay of a relayed path
	Error     string  // why the transfer is paused or failed, for humans
	Notified  bool    // out: the receiver holds our offer; in: the sender was told we completed or rejected
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Errors a Store returns.
var (
	ErrNoTransfer = errors.New("files: no such transfer")
	// ErrTransferExists: CreateTransfer of an ID already stored, or of an
	// incoming offer whose (Peer, RemoteID) is already stored.
	ErrTransferExists = errors.New("files: transfer already stored")
)

// Filter selects transfers from a Store.
type Filter struct {
	Direction Direction // only this direction, if set
	States    []State   // only these states, if any
	Peer      peer.ID   // only with this peer, if set
}

// Update changes some fields of a stored transfer; nil fields are left as
// they are.
type Update struct {
	State     *State
	Dir       *string
	Names     []string // set when non-nil
	Overwrite *bool
	DoneBytes *int64
	Verified  []byte // set when non-nil
	Path      *string
	Relay     *peer.ID
	Error     *string
	Notified  *bool
	Peer      *peer.ID // out, ticket transfers: the receiver that fetched it
}

// Store keeps transfers and their journals of verified chunks. Every write
// is durable (committed and synced) when the method returns: files records a
// chunk as verified only after the chunk's bytes were synced to disk.
type Store interface {
	// CreateTransfer stores a new transfer; a zero CreatedAt means now. An
	// ID that is already stored is an error wrapping ErrTransferExists; for
	// incoming offers, so is a (Peer, RemoteID) pair already stored (see
	// TransferByRemote).
	CreateTransfer(ctx context.Context, t Transfer) error
	// Transfer returns one transfer, or ErrNoTransfer.
	Transfer(ctx context.Context, id TransferID) (Transfer, error)
	// TransferByRemote returns the incoming transfer p offered with ID
	// remote, or ErrNoTransfer.
	TransferByRemote(ctx context.Context, p peer.ID, remote TransferID) (Transfer, error)
	// Transfers lists transfers, newest first. Manifest and Verified may be
	// left out (nil) of the listed transfers; Transfer returns them.
	Transfers(ctx context.Context, f Filter) ([]Transfer, error)
	// UpdateTransfer changes a stored transfer and sets UpdatedAt, or
	// returns ErrNoTransfer.
	UpdateTransfer(ctx context.Context, id TransferID, u Update) error
}
