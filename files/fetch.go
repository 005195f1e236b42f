package files

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// permanent marks an error after which retrying cannot help: the transfer
// fails instead of pausing.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Fetch receives a ticket's content from peer from into opt.Dir, or resumes
// the earlier fetch of the same content from the same peer that did not
// finish (keeping that fetch's folder and names). It fetches the manifest,
// checks free space, stores the transfer and returns once it is running;
// follow it with events.
func (s *Service) Fetch(ctx context.Context, from peer.ID, contentID protocols.Hash, secret []byte, opt ReceiveOptions) (Transfer, error) {
	if from == s.h.ID() {
		return Transfer{}, ErrSelf
	}
	if t, ok, err := s.earlierFetch(ctx, from, contentID); err != nil || ok {
		return t, err
	}
	if opt.Dir == "" {
		return Transfer{}, ErrNoDir
	}
	manifest, m, err := s.fetchManifest(ctx, from, contentID, secret)
	if err != nil {
		return Transfer{}, err
	}
	names, err := prepareDir(opt, m, 0)
	if err != nil {
		return Transfer{}, err
	}
	t := Transfer{
		ID: NewTransferID(), Peer: from, Direction: In, State: StateActive, Ticket: true,
		ContentID: contentID, Manifest: manifest, Secret: secret,
		Dir: opt.Dir, Names: names, Overwrite: opt.Overwrite, Files: m.Files(), Bytes: m.TotalSize(),
	}
	if err := s.store.CreateTransfer(ctx, t); err != nil {
		return Transfer{}, fmt.Errorf("files: store transfer: %w", err)
	}
	s.emit(EventState, t, 0)
	s.log.Info("fetching", "id", t.ID, "peer", from, "files", t.Files, "bytes", t.Bytes)
	s.Kick(from)
	return t, nil
}

// earlierFetch finds an unfinished (or finished) fetch of contentID from
// from, and sets it going again.
func (s *Service) earlierFetch(ctx context.Context, from peer.ID, contentID protocols.Hash) (Transfer, bool, error) {
	ts, err := s.store.Transfers(ctx, Filter{Direction: In, Peer: from, States: []State{StateActive, StatePaused, StateDone}})
	if err != nil {
		return Transfer{}, false, err
	}
	for _, t := range ts {
		if !t.Ticket || t.ContentID != contentID {
			continue
		}
		if t.State == StatePaused {
			if t, err = s.setState(t.ID, StateActive, ""); err != nil {
				return Transfer{}, false, err
			}
		}
		s.log.Info("resuming fetch", "id", t.ID, "peer", from)
		s.Kick(from)
		return t, true, nil
	}
	return Transfer{}, false, nil
}

// fetchManifest asks from for the manifest of a ticket's content, and
// parses it; a manifest that is not the ticket's, or breaks a rule, is
// answered with an Error.
func (s *Service) fetchManifest(ctx context.Context, from peer.ID, contentID protocols.Hash, secret []byte) ([]byte, *protocols.Manifest, error) {
	var manifest []byte
	var m *protocols.Manifest
	f := protocols.FilesFrame{Fetch: &protocols.FileFetch{ContentID: contentID, Secret: secret, WantManifest: true}}
	err := s.exchange(ctx, from, f, protocols.MaxFilesFrame, func(a protocols.FilesFrame) error {
		if a.Serving == nil {
			return &badAnswer{protocols.CodeUnexpected, "expected Serving"}
		}
		if protocols.ContentID(a.Serving.Manifest) != contentID {
			return &badAnswer{protocols.CodeMalformed, "the manifest is not the one the ticket names"}
		}
		var err error
		if m, err = protocols.ParseManifest(a.Serving.Manifest); err != nil {
			return &badAnswer{protocols.ErrorCodeFor(err), "the sender's manifest: " + err.Error()}
		}
		manifest = a.Serving.Manifest
		return nil
	})
	if re, ok := remoteRefusal(err); ok && re.Code == protocols.CodeUnknownTransfer {
		return nil, nil, fmt.Errorf("files: %s does not serve this ticket (any more): %w", from, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("files: fetch from %s: %w", from, err)
	}
	return manifest, m, nil
}

// fetchTransfer fetches (or finishes) one incoming transfer, unless it is
// already being fetched, and records how it ended: done, paused (it will
// be retried) or failed.
func (s *Service) fetchTransfer(ctx context.Context, id TransferID) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.runs[id] != nil {
		s.mu.Unlock()
		return nil
	}
	s.runs[id] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.runs, id)
		s.mu.Unlock()
	}()
	t, err := s.store.Transfer(ctx, id)
	if err != nil {
		return err
	}
	if t.State == StateDone {
		return s.sendComplete(ctx, t)
	}
	err = s.runFetch(ctx, t)
	if err == nil || s.ctx.Err() != nil {
		return err // done, or stopping: the transfer resumes at the next start
	}
	if now, _ := s.store.Transfer(context.WithoutCancel(ctx), id); now.State.Final() {
		return nil // cancelled meanwhile
	}
	s.stopped(t, err)
	return err
}

// stopped records why a fetch stopped: failed for good, or paused.
func (s *Service) stopped(t Transfer, err error) {
	var p permanent
	re, coded := remoteRefusal(err)
	st := StatePaused
	if errors.As(err, &p) || coded && re.Code != protocols.CodeRateLimited && re.Code != protocols.CodeInternal {
		st = StateFailed
		s.log.Warn("transfer failed", "id", t.ID, "peer", t.Peer, "err", err)
	} else {
		s.log.Info("transfer paused; will resume", "id", t.ID, "peer", t.Peer, "err", err)
	}
	if _, serr := s.setState(t.ID, st, err.Error()); serr != nil {
		// The store cannot take it (its disk is full, most likely, as
		// the transfer's is): say so to whoever follows events rather
		// than leave the transfer looking active.
		s.log.Warn("transfer state not saved", "id", t.ID, "state", st, "err", serr)
		t.State, t.Error = st, fmt.Sprintf("%v (not saved: %v)", err, serr)
		s.emit(EventState, t, 0)
	}
}

// runFetch fetches what t is missing, verifies it, puts the files in place
// and tells the sender.
func (s *Service) runFetch(ctx context.Context, t Transfer) error {
	m, err := protocols.ParseManifest(t.Manifest)
	if err != nil {
		return permanent{fmt.Errorf("files: stored manifest: %w", err)}
	}
	lay := newLayout(m)
	verified := loadBitmap(t.Verified, lay.total)
	need := m.TotalSize() - lay.verifiedBytes(verified)
	if need > 0 {
		if err := CheckSpace(t.Dir, need); err != nil {
			return err
		}
	}
	sink, err := OpenSink(t.Dir, m, t.Names, t.Overwrite)
	if err != nil {
		return err
	}
	defer sink.Close()
	if s.sinkHook != nil {
		s.sinkHook(sink)
	}
	// A partial that was deleted since the journal was written holds
	// nothing, whatever the journal says.
	for _, e := range sink.Created() {
		for i := range uint64(protocols.ChunkCount(m.Entries[e].Size)) {
			verified.clear(lay.ref(e, i).g)
		}
	}
	need = m.TotalSize() - lay.verifiedBytes(verified)
	var st *stream
	if need > 0 {
		if st, err = s.download(ctx, t, lay, verified, sink, need); err != nil {
			return err
		}
		defer st.Close()
	}
	if err := sink.Finalize(); err != nil {
		return permanent{fmt.Errorf("files: put the files in place: %w", err)}
	}
	failpoint(FailBeforeDone)
	// The sender is told before the transfer is recorded done, so that
	// whoever waits for done (kith receive) can stop the node at once. If
	// it cannot be told now, the retrier tells it later.
	notified := s.tell(ctx, t, m, st) == nil
	done, all, empty := StateDone, m.TotalSize(), ""
	u := Update{State: &done, DoneBytes: &all, Verified: verified, Error: &empty, Notified: &notified}
	if _, err = s.update(t.ID, u, EventState); err != nil {
		return err
	}
	s.forgetMeter(t.ID)
	s.log.Info("transfer received and verified", "id", t.ID, "peer", t.Peer, "bytes", all, "sender_told", notified)
	return nil
}

// openFetch opens a fetch stream for t and reads the sender's answer.
func (s *Service) openFetch(ctx context.Context, t Transfer, limited bool) (*stream, error) {
	if limited {
		ctx = network.WithAllowLimitedConn(ctx, "files")
	}
	st, err := s.openStream(ctx, t.Peer)
	if err != nil {
		return nil, err
	}
	f := &protocols.FileFetch{TransferID: t.RemoteID, ContentID: t.ContentID}
	if t.Ticket {
		f.Secret = t.Secret
	}
	st.SetDeadline(time.Now().Add(s.cfg.FrameTimeout))
	if err := st.w.Write(protocols.FilesFrame{Fetch: f}); err != nil {
		st.Reset()
		return nil, fmt.Errorf("files: write to %s: %w", t.Peer, err)
	}
	ans, err := st.r.Read(protocols.MaxFilesControlFrame)
	switch {
	case err != nil:
		st.Reset()
		return nil, fmt.Errorf("files: read from %s: %w", t.Peer, err)
	case ans.Error != nil:
		st.Close()
		return nil, ans.Error
	case ans.Serving == nil:
		st.Reset()
		return nil, permanent{fmt.Errorf("files: %s answered the fetch with an unexpected frame", t.Peer)}
	}
	return st, nil
}

// sendComplete tells the sender, on a new stream, that t is received and
// verified.
func (s *Service) sendComplete(ctx context.Context, t Transfer) error {
	if t.Notified {
		return nil
	}
	m, err := protocols.ParseManifest(t.Manifest)
	if err != nil {
		return err
	}
	return s.complete(ctx, t, m, nil)
}

// complete tells the sender, on st (or a new fetch stream when st is nil),
// and records that it knows.
func (s *Service) complete(ctx context.Context, t Transfer, m *protocols.Manifest, st *stream) error {
	if err := s.tell(ctx, t, m, st); err != nil {
		return err
	}
	yes := true
	_, err := s.update(t.ID, Update{Notified: &yes}, EventState)
	return err
}

// tell reports the verified root to the sender. A sender that no longer
// knows the transfer has nothing to be told.
func (s *Service) tell(ctx context.Context, t Transfer, m *protocols.Manifest, st *stream) error {
	err := s.completeOn(ctx, t, m, st)
	if re, ok := remoteRefusal(err); ok && re.Code == protocols.CodeUnknownTransfer {
		return nil
	}
	return err
}

func (s *Service) completeOn(ctx context.Context, t Transfer, m *protocols.Manifest, st *stream) error {
	if st == nil {
		var err error
		if st, err = s.openFetch(ctx, t, true); err != nil {
			return err
		}
		defer st.Close()
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	st.SetDeadline(time.Now().Add(s.cfg.FrameTimeout))
	if err := st.w.Write(protocols.FilesFrame{Complete: &protocols.FileComplete{Root: m.Root()}}); err != nil {
		return err
	}
	ans, err := st.r.Read(protocols.MaxFilesControlFrame)
	switch {
	case err != nil:
		return err
	case ans.Error != nil:
		return ans.Error
	case ans.Done == nil:
		return fmt.Errorf("files: %s answered the completion with an unexpected frame", t.Peer)
	}
	return nil
}
