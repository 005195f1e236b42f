package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/protocols"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// SendFiles offers paths (absolute: files and folders) to target, a contact
// name, peer ID or ticket. It returns once the transfer is stored (state
// offered); the offer is delivered in the background, retried until the
// peer's node holds it. Follow it on the event stream.
func (n *Node) SendFiles(ctx context.Context, target string, paths []string) (TransferInfo, error) {
	if err := checkSources(paths); err != nil {
		return TransferInfo{}, err
	}
	p, err := n.Resolve(ctx, target)
	if err != nil {
		return TransferInfo{}, err
	}
	if p == n.host.ID() {
		return TransferInfo{}, files.ErrSelf
	}
	var w warnings
	t, err := n.files.Send(ctx, p, paths, files.SendOptions{Warn: w.add})
	if err != nil {
		return TransferInfo{}, err
	}
	info := n.transferInfo(ctx, t)
	info.Warnings = w.list()
	return info, nil
}

// ShareFiles stores paths as a ticket transfer and returns the ticket: this
// node's peer ID, a few of its addresses, the content ID and the secret. The
// transfer ends (done) after the first complete fetch, or, with keep, is
// served until cancelled.
func (n *Node) ShareFiles(ctx context.Context, paths []string, keep bool) (TransferInfo, string, error) {
	if err := checkSources(paths); err != nil {
		return TransferInfo{}, "", err
	}
	var w warnings
	t, err := n.files.Share(ctx, paths, files.SendOptions{Keep: keep, Warn: w.add})
	if err != nil {
		return TransferInfo{}, "", err
	}
	info := n.transferInfo(ctx, t)
	info.Warnings = w.list()
	tk := protocols.Ticket{Peer: n.host.ID(), Content: t.ContentID[:], Secret: t.Secret}
	return info, encodeTicket(tk, fewTicketAddrs(n.host.Addrs())), nil
}

// ReceiveTicket fetches a file ticket's content into dir (absolute; "" is
// the download folder), or resumes an earlier fetch of it that did not
// finish. It returns once the fetch runs; follow it on the event stream.
func (n *Node) ReceiveTicket(ctx context.Context, ticket, dir string, overwrite bool) (TransferInfo, error) {
	tk, err := protocols.ParseTicket(ticket)
	if err != nil {
		return TransferInfo{}, err
	}
	var content protocols.Hash
	if len(tk.Content) != len(content) || len(tk.Secret) == 0 {
		return TransferInfo{}, fmt.Errorf("%w: it names a peer, not files (use it with kith contacts add, msg or ping)", ErrNotFileTicket)
	}
	copy(content[:], tk.Content)
	if tk.Peer == n.host.ID() {
		return TransferInfo{}, files.ErrSelf
	}
	if dir, err = n.receiveDir(dir); err != nil {
		return TransferInfo{}, err
	}
	n.host.Peerstore().AddAddrs(tk.Peer, tk.Addrs, peerstore.AddressTTL)
	if err := n.Connect(ctx, tk.Peer); err != nil {
		return TransferInfo{}, err
	}
	t, err := n.files.Fetch(ctx, tk.Peer, content, tk.Secret, files.ReceiveOptions{Dir: dir, Overwrite: overwrite})
	if err != nil {
		return TransferInfo{}, err
	}
	return n.transferInfo(ctx, t), nil
}

// Transfers lists every stored transfer, newest first.
func (n *Node) Transfers(ctx context.Context) ([]TransferInfo, error) {
	ts, err := n.files.Transfers(ctx, files.Filter{})
	if err != nil {
		return nil, err
	}
	out := make([]TransferInfo, len(ts))
	for i, t := range ts {
		out[i] = n.transferInfo(ctx, t)
		n.withDefaultDir(&out[i])
	}
	return out, nil
}

// Transfer returns one transfer, by ID or unique ID prefix, with its
// entries.
func (n *Node) Transfer(ctx context.Context, id string) (TransferInfo, error) {
	tid, err := n.transferID(ctx, id)
	if err != nil {
		return TransferInfo{}, err
	}
	t, err := n.files.Transfer(ctx, tid)
	if err != nil {
		return TransferInfo{}, err
	}
	info := n.transferInfo(ctx, t)
	n.withDefaultDir(&info)
	info.Entries = manifestEntries(t)
	return info, nil
}

// AcceptTransfer accepts an incoming offer into dir (absolute; "" is the
// download folder). Existing files are kept, the new ones named
// "name (1).ext", unless overwrite.
func (n *Node) AcceptTransfer(ctx context.Context, id, dir string, overwrite bool) (TransferInfo, error) {
	tid, err := n.transferID(ctx, id)
	if err != nil {
		return TransferInfo{}, err
	}
	if dir, err = n.receiveDir(dir); err != nil {
		return TransferInfo{}, err
	}
	t, err := n.files.Accept(ctx, tid, files.ReceiveOptions{Dir: dir, Overwrite: overwrite})
	if err != nil {
		return TransferInfo{}, err
	}
	return n.transferInfo(ctx, t), nil
}

// RejectTransfer declines an incoming offer; the sender is told.
func (n *Node) RejectTransfer(ctx context.Context, id string) (TransferInfo, error) {
	return n.answer(ctx, id, n.files.Reject)
}

// CancelTransfer stops a transfer for good (state failed).
func (n *Node) CancelTransfer(ctx context.Context, id string) (TransferInfo, error) {
	return n.answer(ctx, id, n.files.Cancel)
}

func (n *Node) answer(ctx context.Context, id string, f func(context.Context, files.TransferID) (files.Transfer, error)) (TransferInfo, error) {
	tid, err := n.transferID(ctx, id)
	if err != nil {
		return TransferInfo{}, err
	}
	t, err := f(ctx, tid)
	if err != nil {
		return TransferInfo{}, err
	}
	return n.transferInfo(ctx, t), nil
}

// transferID resolves a transfer ID or a unique prefix of at least 4 hex
// digits.
func (n *Node) transferID(ctx context.Context, s string) (files.TransferID, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 4 || len(s) > 32 || !isHex(s) {
		return files.TransferID{}, fmt.Errorf("%q: %w", s, ErrBadTransferID)
	}
	if len(s) == 32 {
		return files.ParseTransferID(s)
	}
	ts, err := n.files.Transfers(ctx, files.Filter{})
	if err != nil {
		return files.TransferID{}, err
	}
	var match []string
	var id files.TransferID
	for _, t := range ts {
		if strings.HasPrefix(t.ID.String(), s) {
			match, id = append(match, t.ID.String()), t.ID
		}
	}
	switch {
	case len(match) == 0:
		return id, fmt.Errorf("transfer %s: %w", s, files.ErrNoTransfer)
	case len(match) > 1:
		if len(match) > 10 {
			match = append(match[:10], "...")
		}
		return id, fmt.Errorf("%w: %s is the start of %s", ErrAmbiguousID, s, strings.Join(match, ", "))
	}
	return id, nil
}

func isHex(s string) bool { return strings.Trim(s, "0123456789abcdef") == "" }

// checkSources refuses relative or missing paths before any hashing: the
// daemon's working directory is not the caller's.
func checkSources(paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("%w: nothing to send", ErrBadPath)
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%w: %q is not absolute", ErrBadPath, p)
		}
		if _, err := os.Lstat(p); err != nil {
			return fmt.Errorf("%w: %w", ErrBadPath, err)
		}
	}
	return nil
}

// receiveDir checks a folder to receive into; "" is the download folder.
func (n *Node) receiveDir(dir string) (string, error) {
	if dir == "" {
		return n.cfg.DownloadDir()
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%w: folder %q is not absolute", ErrBadPath, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPath, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: %s is not a folder", ErrBadPath, dir)
	}
	return filepath.Clean(dir), nil
}

// warnings collects what files.SendOptions.Warn reports.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msgs
}

// manifestEntries lists every file and folder of t's manifest, or nothing
// when t carries no manifest (listings leave it out).
func manifestEntries(t files.Transfer) []EntryInfo {
	if len(t.Manifest) == 0 {
		return nil
	}
	m, err := protocols.ParseManifest(t.Manifest)
	if err != nil {
		return nil
	}
	out := make([]EntryInfo, len(m.Entries))
	for i, e := range m.Entries {
		out[i] = EntryInfo{Path: e.Path, Size: e.Size, Dir: e.Dir}
	}
	return out
}
