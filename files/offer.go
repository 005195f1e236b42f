package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SendOptions tune Send and Share.
type SendOptions struct {
	// Warn is told about paths left out (symlinks, special files).
	Warn func(msg string)
	// Progress is told how hashing the paths goes.
	Progress func(hashed, total int64)
	// Keep (Share only) serves the ticket to any number of receivers, until
	// Cancel, instead of ending after the first completed fetch.
	Keep bool
}

// ReceiveOptions tune Accept and Fetch.
type ReceiveOptions struct {
	Dir       string // the folder to receive into (required, absolute)
	Overwrite bool   // replace existing files instead of choosing "name (1).ext"
}

// secretLen is the length of a ticket's secret.
const secretLen = 32

// Send offers paths (files and directories) to peer to. It hashes them,
// stores the transfer (state offered) and returns; the offer is delivered in
// the background, retried until the peer holds it. Follow the transfer with
// events: it ends done, rejected or failed.
func (s *Service) Send(ctx context.Context, to peer.ID, paths []string, opt SendOptions) (Transfer, error) {
	if to == s.h.ID() {
		return Transfer{}, ErrSelf
	}
	t, err := s.newOutgoing(ctx, to, paths, opt)
	if err != nil {
		return Transfer{}, err
	}
	s.Kick(to)
	return t, nil
}

// Share stores paths as a ticket transfer with a fresh secret and serves it
// to whoever presents that secret. The caller builds the ticket from our
// peer ID and addresses, t.ContentID and t.Secret. Until a receiver fetches
// it, the transfer's Peer is our own ID.
func (s *Service) Share(ctx context.Context, paths []string, opt SendOptions) (Transfer, error) {
	t, err := s.newOutgoing(ctx, "", paths, opt)
	if err != nil {
		return Transfer{}, err
	}
	s.mu.Lock()
	s.shares[t.ContentID] = append(s.shares[t.ContentID], t.ID)
	if opt.Keep {
		s.keep[t.ID] = true
	}
	s.mu.Unlock()
	return t, nil
}

// newOutgoing hashes paths and stores an outgoing transfer: offered to to,
// or a ticket transfer when to is empty.
func (s *Service) newOutgoing(ctx context.Context, to peer.ID, paths []string, opt SendOptions) (Transfer, error) {
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return Transfer{}, fmt.Errorf("files: %q is not an absolute path", p)
		}
	}
	src, err := BuildSource(ctx, paths, SourceOptions{Warn: opt.Warn, Progress: opt.Progress})
	if err != nil {
		return Transfer{}, err
	}
	t := Transfer{
		ID: NewTransferID(), Peer: to, Direction: Out, State: StateOffered,
		ContentID: src.ContentID, Manifest: src.Bytes, Sources: src.Locals,
		Files: src.Manifest.Files(), Bytes: src.Manifest.TotalSize(),
	}
	if to == "" {
		t.Peer, t.Ticket, t.Secret = s.h.ID(), true, make([]byte, secretLen)
		rand.Read(t.Secret)
	}
	if err := s.store.CreateTransfer(ctx, t); err != nil {
		return Transfer{}, fmt.Errorf("files: store transfer: %w", err)
	}
	s.mu.Lock()
	s.sources[t.ID] = src
	s.mu.Unlock()
	s.emit(EventState, t, 0)
	s.log.Info("transfer offered", "id", t.ID, "peer", to, "files", t.Files, "bytes", t.Bytes, "ticket", t.Ticket)
	return t, nil
}

// deliverOffer sends t's offer to its peer; when the peer holds it, t is
// marked notified. A refusal fails t for good; anything else is retried.
func (s *Service) deliverOffer(ctx context.Context, t Transfer) error {
	t, err := s.store.Transfer(ctx, t.ID) // with its manifest
	if err != nil {
		return err
	}
	err = s.exchange(ctx, t.Peer, protocols.FilesFrame{Offer: &protocols.FileOffer{TransferID: t.ID, Manifest: t.Manifest}},
		protocols.MaxFilesControlFrame, func(f protocols.FilesFrame) error {
			if f.OfferAck == nil || f.OfferAck.TransferID != t.ID {
				return &badAnswer{protocols.CodeUnexpected, "expected the offer's OfferAck"}
			}
			return nil
		})
	if re, ok := remoteRefusal(err); ok && re.Code != protocols.CodeRateLimited && re.Code != protocols.CodeInternal {
		_, err = s.setState(t.ID, StateFailed, "the receiver refused the offer: "+re.Error())
		return err
	}
	if err != nil {
		return err
	}
	yes := true
	_, err = s.update(t.ID, Update{Notified: &yes}, EventState)
	return err
}

// exchange opens a stream to p, writes f, reads one answer (at most limit
// bytes) and gives it to check; an Error answer is returned as a
// *protocols.RemoteError.
func (s *Service) exchange(ctx context.Context, p peer.ID, f protocols.FilesFrame, limit int, check func(protocols.FilesFrame) error) error {
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.FrameTimeout)
	defer cancel()
	st, err := s.openStream(network.WithAllowLimitedConn(ctx, "files"), p)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := st.w.Write(f); err != nil {
		st.Reset()
		return fmt.Errorf("files: write to %s: %w", p, err)
	}
	ans, err := st.r.Read(limit)
	if err != nil {
		st.Reset()
		return fmt.Errorf("files: read answer from %s: %w", p, err)
	}
	if ans.Error != nil {
		return ans.Error
	}
	err = check(ans)
	if b, ok := errors.AsType[*badAnswer](err); ok {
		st.fail(b.code, b.msg)
	}
	return err
}

// badAnswer is an answer an exchange refuses; the peer is told, with code.
type badAnswer struct {
	code protocols.ErrorCode
	msg  string
}

func (b *badAnswer) Error() string { return "files: refused the peer's answer: " + b.msg }

// handleOffer stores an offer from p and acks it; an offer is accepted at
// once when the configuration says so.
func (s *Service) handleOffer(st *stream, p peer.ID, o *protocols.FileOffer) {
	if code, err := s.authorize(p); err != nil {
		st.fail(code, err.Error())
		return
	}
	if !s.offers.allow(p) {
		s.log.Debug("offer over the peer's rate", "peer", p)
		st.fail(protocols.CodeRateLimited, ErrOfferRate.Error())
		return
	}
	m, err := protocols.ParseManifest(o.Manifest)
	if err != nil {
		s.log.Debug("bad offer", "peer", p, "err", err)
		st.fail(protocols.ErrorCodeFor(err), err.Error())
		return
	}
	t, err := s.storeOffer(p, o, m)
	switch {
	case errors.Is(err, ErrTooManyOffers):
		st.fail(protocols.CodeRateLimited, err.Error())
		return
	case errors.Is(err, errOfferChanged):
		st.fail(protocols.CodeMalformed, err.Error())
		return
	case err != nil:
		s.log.Error("store offer", "peer", p, "err", err)
		st.fail(protocols.CodeInternal, "could not store the offer")
		return
	}
	if err := st.w.Write(protocols.FilesFrame{OfferAck: &protocols.FileOfferAck{TransferID: o.TransferID}}); err != nil {
		st.Reset()
		return
	}
	st.Close()
	if t.State == StateOffered && s.cfg.AutoAccept != nil {
		if dir, ok := s.cfg.AutoAccept(p); ok {
			if _, err := s.Accept(s.ctx, t.ID, ReceiveOptions{Dir: dir}); err != nil {
				s.log.Warn("auto-accept failed; the offer waits for an answer", "id", t.ID, "err", err)
			}
		}
	}
}

// What a receiver answers (RATE_LIMITED, with this text) to an offer past
// a limit: the offers of one peer waiting for an answer
// (Config.MaxPendingOffers), or the rate a peer may offer at
// (Config.OfferBurst, OfferRate).
var (
	ErrTooManyOffers = errors.New("too many offers waiting for an answer")
	ErrOfferRate     = errors.New("too many offers at once; try again later")
)

var errOfferChanged = errors.New("this transfer ID was offered with another manifest")

// storeOffer stores o unless p already has as many offers waiting as
// allowed; an offer already stored is returned as it is.
func (s *Service) storeOffer(p peer.ID, o *protocols.FileOffer, m *protocols.Manifest) (Transfer, error) {
	ctx := s.ctx
	s.offerMu.Lock()
	defer s.offerMu.Unlock()
	if t, err := s.store.TransferByRemote(ctx, p, o.TransferID); err == nil {
		if t.ContentID != protocols.ContentID(o.Manifest) {
			return Transfer{}, errOfferChanged
		}
		return t, nil
	} else if !errors.Is(err, ErrNoTransfer) {
		return Transfer{}, err
	}
	waiting, err := s.store.Transfers(ctx, Filter{Direction: In, States: []State{StateOffered}, Peer: p})
	if err != nil {
		return Transfer{}, err
	}
	if len(waiting) >= s.cfg.MaxPendingOffers {
		return Transfer{}, ErrTooManyOffers
	}
	t := Transfer{
		ID: NewTransferID(), RemoteID: o.TransferID, Peer: p, Direction: In, State: StateOffered,
		ContentID: protocols.ContentID(o.Manifest), Manifest: o.Manifest,
		Files: m.Files(), Bytes: m.TotalSize(),
	}
	if err := s.store.CreateTransfer(ctx, t); errors.Is(err, ErrTransferExists) {
		return s.store.TransferByRemote(ctx, p, o.TransferID) // a retry raced its original
	} else if err != nil {
		return Transfer{}, err
	}
	s.log.Info("offer received", "id", t.ID, "peer", p, "files", t.Files, "bytes", t.Bytes)
	s.emit(EventOffer, t, 0)
	return t, nil
}

// Accept accepts an incoming offer into opt.Dir: it checks free space,
// chooses the names the items will have, and starts fetching.
func (s *Service) Accept(ctx context.Context, id TransferID, opt ReceiveOptions) (Transfer, error) {
	t, err := s.store.Transfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if t.Direction != In || t.State != StateOffered {
		return Transfer{}, fmt.Errorf("%w (it is %s)", ErrNotOffered, t.State)
	}
	m, err := protocols.ParseManifest(t.Manifest)
	if err != nil {
		return Transfer{}, fmt.Errorf("files: stored manifest: %w", err)
	}
	names, err := prepareDir(opt, m, 0)
	if err != nil {
		return Transfer{}, err
	}
	active := StateActive
	t, err = s.update(id, Update{State: &active, Dir: &opt.Dir, Names: names, Overwrite: &opt.Overwrite}, EventState)
	if err != nil {
		return Transfer{}, err
	}
	s.log.Info("offer accepted", "id", id, "peer", t.Peer)
	s.Kick(t.Peer)
	return t, nil
}

// prepareDir checks that opt.Dir can take m (whose verified bytes are
// already there) and chooses the names of its items.
func prepareDir(opt ReceiveOptions, m *protocols.Manifest, verified int64) ([]string, error) {
	if opt.Dir == "" {
		return nil, ErrNoDir
	}
	if !filepath.IsAbs(opt.Dir) {
		return nil, fmt.Errorf("files: %q is not an absolute path", opt.Dir)
	}
	if err := CheckSpace(opt.Dir, m.TotalSize()-verified); err != nil {
		return nil, err
	}
	return PlanNames(opt.Dir, m, opt.Overwrite)
}

// Reject declines an incoming offer; the sender is told.
func (s *Service) Reject(ctx context.Context, id TransferID) (Transfer, error) {
	t, err := s.store.Transfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if t.Direction != In || t.State != StateOffered {
		return Transfer{}, fmt.Errorf("%w (it is %s)", ErrNotOffered, t.State)
	}
	st, no := StateRejected, false
	reason := "rejected"
	t, err = s.update(id, Update{State: &st, Error: &reason, Notified: &no}, EventState)
	if err == nil {
		s.Kick(t.Peer)
	}
	return t, err
}

// Cancel stops a transfer for good (state failed, "cancelled"); a partial
// download stays on disk as NAME.kith-partial. The peer is told.
func (s *Service) Cancel(ctx context.Context, id TransferID) (Transfer, error) {
	t, err := s.store.Transfer(ctx, id)
	if err != nil {
		return Transfer{}, err
	}
	if t.State.Final() {
		return t, nil
	}
	st, no := StateFailed, false
	reason := "cancelled"
	u := Update{State: &st, Error: &reason}
	if t.Direction == In && t.RemoteID != (TransferID{}) {
		u.Notified = &no // tell the sender, with a Reject
	}
	// The state first: a fetch that stops sees it is cancelled, not paused.
	t, err = s.update(id, u, EventState)
	if err != nil {
		return Transfer{}, err
	}
	s.mu.Lock()
	if stop := s.runs[id]; stop != nil {
		stop()
	}
	s.dropShare(t)
	s.mu.Unlock()
	if u.Notified != nil {
		s.Kick(t.Peer)
	}
	return t, nil
}

// dropShare stops serving t's ticket. s.mu must be held.
func (s *Service) dropShare(t Transfer) {
	ids := s.shares[t.ContentID]
	for i, id := range ids {
		if id == t.ID {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(s.shares, t.ContentID)
	} else {
		s.shares[t.ContentID] = ids
	}
	delete(s.keep, t.ID)
	delete(s.sources, t.ID)
}

// sendReject tells the sender we declined (or cancelled) its transfer.
func (s *Service) sendReject(ctx context.Context, t Transfer) error {
	err := s.exchange(ctx, t.Peer, protocols.FilesFrame{Reject: &protocols.FileReject{TransferID: t.RemoteID}},
		protocols.MaxFilesControlFrame, func(f protocols.FilesFrame) error {
			if f.Done == nil {
				return &badAnswer{protocols.CodeUnexpected, "expected Done"}
			}
			return nil
		})
	if re, ok := remoteRefusal(err); ok && re.Code == protocols.CodeUnknownTransfer {
		err = nil // the sender no longer has it: nothing to tell
	}
	if err != nil {
		return err
	}
	yes := true
	_, err = s.update(t.ID, Update{Notified: &yes}, EventState)
	return err
}

// handleReject records that p declined one of our offers (or cancelled the
// transfer after accepting it).
func (s *Service) handleReject(st *stream, p peer.ID, r *protocols.FileReject) {
	t, err := s.store.Transfer(s.ctx, r.TransferID)
	if err != nil || t.Direction != Out || t.Peer != p || t.Ticket {
		st.fail(protocols.CodeUnknownTransfer, "no such transfer")
		return
	}
	if !t.State.Final() {
		state, reason := StateRejected, "the receiver declined"
		if t.State != StateOffered {
			state, reason = StateFailed, "the receiver cancelled"
		}
		if _, err := s.setState(t.ID, state, reason); err != nil {
			st.fail(protocols.CodeInternal, "could not store the answer")
			return
		}
		s.log.Info("transfer declined", "id", t.ID, "peer", p)
	}
	st.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
	if err := st.w.Write(protocols.FilesFrame{Done: &protocols.FileDone{}}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}
