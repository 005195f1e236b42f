package files

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ServiceName is the resource manager service name of the files protocol.
const ServiceName = "kith.files"

// Errors of the Service's methods and of the Authorize function.
var (
	ErrNotAllowed  = errors.New("not allowed to send files to this node")
	ErrBlocked     = errors.New("blocked")
	ErrSelf        = errors.New("files: cannot send files to yourself")
	ErrNotOffered  = errors.New("files: the transfer is not waiting for an answer")
	ErrLimitedPath = errors.New("files: only a limited relay path to the peer exists")
	ErrClosed      = errors.New("files: service closed")
)

// Config configures the files service. The zero value is valid.
type Config struct {
	// Authorize decides whether p may offer us files; nil admits everyone.
	// Return an error wrapping ErrNotAllowed or ErrBlocked to refuse. It is
	// not asked about ticket fetches: the ticket's secret authorizes those.
	Authorize func(p peer.ID) error
	// AutoAccept says where an offer from p is accepted without asking, if
	// anywhere: ok false leaves the offer waiting for Accept or Reject.
	AutoAccept func(p peer.ID) (dir string, ok bool)
	// WaitDirect bounds the wait for a direct connection when the only
	// connection to the peer is a relayed one too limited for the transfer
	// (30 s); then the transfer pauses with ErrLimitedPath.
	WaitDirect time.Duration
	// Window is how many chunk bytes a receiver keeps requested and not yet
	// received (16 MiB).
	Window int
	// MaxPendingOffers bounds the offers waiting for an answer, per peer (16).
	MaxPendingOffers int
	// FrameTimeout bounds each read and write of a frame or chunk (30 s).
	FrameTimeout time.Duration
	// RetryMin and RetryMax bound the back-off of offer delivery and of
	// resuming transfers, per peer (1 s, 5 min).
	RetryMin, RetryMax time.Duration
}

// EventKind names what an Event reports.
type EventKind string

// Event kinds.
const (
	EventOffer    EventKind = "offer"    // an incoming offer waits for an answer
	EventState    EventKind = "state"    // a transfer changed state (or path)
	EventProgress EventKind = "progress" // bytes were verified (at most a few per second per transfer)
)

// Event reports a change to a transfer. Transfer is the listing form
// (Manifest and Verified left out).
type Event struct {
	Kind     EventKind
	Transfer Transfer
	Rate     float64 // bytes per second over the last few seconds (progress)
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the service's logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithOnEvent sets a function called for every Event. It must not block.
func WithOnEvent(f func(Event)) Option { return func(s *Service) { s.onEvent = f } }

// SendOptions tune Send and Share.
type SendOptions struct {
	// Warn is told about paths left out (symlinks, special files).
	Warn func(msg string)
	// Keep (Share only) serves the ticket to any number of receivers, until
	// Cancel, instead of ending after the first completed fetch.
	Keep bool
}

// ReceiveOptions tune Accept and Fetch.
type ReceiveOptions struct {
	Dir       string // the folder to receive into (required)
	Overwrite bool   // replace existing files instead of choosing "name (1).ext"
}

// Service runs /kith/files/1.0.0 on a host: it offers, serves, fetches,
// verifies and resumes transfers kept in a Store.
type Service struct {
	h       host.Host
	store   Store
	cfg     Config
	log     *slog.Logger
	onEvent func(Event)
}

// New starts the files service on h: it registers the protocol handler and
// resumes the stored transfers that are not final.
func New(h host.Host, store Store, cfg Config, opts ...Option) (*Service, error) {
	panic("files: not implemented yet")
}

// Close stops the service: it removes the handler, stops every transfer
// (each stays resumable) and waits for them. It is safe to call twice.
func (s *Service) Close() error { return nil }

// Send offers paths (files and directories) to peer to. It hashes them,
// stores the transfer (state offered) and returns; the offer is delivered in
// the background, retried until the peer holds it. Follow the transfer with
// events: it ends done, rejected or failed.
func (s *Service) Send(ctx context.Context, to peer.ID, paths []string, opt SendOptions) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Share stores paths as a ticket transfer with a fresh secret and serves it
// to whoever presents that secret. The caller builds the ticket from our
// peer ID and addresses, t.ContentID and t.Secret.
func (s *Service) Share(ctx context.Context, paths []string, opt SendOptions) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Fetch receives a ticket's content from peer from into opt.Dir, or resumes
// the earlier fetch of the same content from the same peer that did not
// finish (keeping that fetch's folder and names). It returns once the
// transfer is stored and running; follow it with events.
func (s *Service) Fetch(ctx context.Context, from peer.ID, contentID protocols.Hash, secret []byte, opt ReceiveOptions) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Accept accepts an incoming offer into opt.Dir: it checks free space and
// starts fetching.
func (s *Service) Accept(ctx context.Context, id TransferID, opt ReceiveOptions) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Reject declines an incoming offer; the sender is told.
func (s *Service) Reject(ctx context.Context, id TransferID) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Cancel stops a transfer for good (state failed, "cancelled"); a partial
// download stays on disk as NAME.kith-partial.
func (s *Service) Cancel(ctx context.Context, id TransferID) (Transfer, error) {
	return Transfer{}, errors.New("files: not implemented yet")
}

// Transfer returns one stored transfer.
func (s *Service) Transfer(ctx context.Context, id TransferID) (Transfer, error) {
	return s.store.Transfer(ctx, id)
}

// Transfers lists stored transfers, newest first.
func (s *Service) Transfers(ctx context.Context, f Filter) ([]Transfer, error) {
	return s.store.Transfers(ctx, f)
}

// Kick retries at once what waits for p: offers to deliver, transfers to
// resume. Call it when p connects.
func (s *Service) Kick(p peer.ID) {}

// RetryAll retries everything waiting, for every peer (for example after the
// node rejoined the network).
func (s *Service) RetryAll() {}
