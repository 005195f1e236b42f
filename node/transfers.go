package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TransferInfo is a file transfer as `kith transfers` prints it. Names, Dir
// and Error come from the peer (an incoming offer's names) or from its
// answers: a client escapes them before printing.
type TransferInfo struct {
	ID        string `json:"id"`                  // 32 hex digits
	Peer      string `json:"peer"`                // the other side ("" for a ticket nobody fetched yet)
	PeerName  string `json:"peer_name,omitempty"` // its contact name
	Direction string `json:"direction"`           // "in" or "out"
	Files     int    `json:"files"`
	Bytes     int64  `json:"bytes"`
	DoneBytes int64  `json:"done_bytes"` // verified by the receiver
	// State is offered, active, paused, done, failed or rejected.
	State string `json:"state"`
	Path  string `json:"path"`            // "direct", "relayed" or "" (no connection used yet)
	Relay string `json:"relay,omitempty"` // the relay's peer ID on a relayed path
	Error string `json:"error,omitempty"` // why it is paused or failed
	// Names are, incoming, the final name of each top-level item in Dir
	// (chosen on accept); outgoing, the base name of each source.
	Names []string `json:"names,omitempty"`
	// Dir is, incoming, the folder received into; while an offer waits, the
	// folder accepting it without --dir would use.
	Dir      string  `json:"dir,omitempty"`
	Ticket   bool    `json:"ticket,omitempty"`   // served for, or fetched with, a ticket
	Notified bool    `json:"notified,omitempty"` // out: the receiver holds the offer
	Rate     float64 `json:"rate,omitempty"`     // bytes per second (progress events)
	// Entries lists every file and folder of the transfer (Transfer only).
	Entries []EntryInfo `json:"entries,omitempty"`
	// Warnings name paths left out (symlinks, special files): in the answer
	// to a send or share only.
	Warnings  []string  `json:"warnings,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// EntryInfo is one file or folder of a transfer, its path relative to the
// transfer's top (slash-separated).
type EntryInfo struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir,omitempty"`
}

// startFiles builds the files service: offers admitted by the DM policy,
// auto-accepted per [files] auto_accept, events on the node's stream.
func (n *Node) startFiles(log *slog.Logger) error {
	f, err := files.New(n.host, n.store, files.Config{
		Authorize:  n.authorizeFiles,
		AutoAccept: n.autoAccept,
	}, files.WithLogger(log), files.WithOnEvent(n.onTransfer))
	if err != nil {
		return fmt.Errorf("node: files: %w", err)
	}
	n.mu.Lock()
	n.files = f
	n.mu.Unlock()
	return nil
}

// kickFiles retries at once what waits for p (called when p connects).
func (n *Node) kickFiles(p peer.ID) {
	n.mu.Lock()
	f := n.files
	n.mu.Unlock()
	if f != nil {
		f.Kick(p)
	}
}

// retryAll retries queued messages and waiting transfers, for every peer:
// the node has just rejoined the network.
func (n *Node) retryAll() {
	n.dm.RetryAll()
	n.files.RetryAll()
}

// authorizeFiles is the file-offer policy: the same as for direct messages.
func (n *Node) authorizeFiles(p peer.ID) error {
	a, err := n.admit(p)
	switch {
	case err != nil:
		return err
	case a == isBlocked:
		return files.ErrBlocked
	case a == stranger:
		return fmt.Errorf("%w: this node accepts files from its contacts only", files.ErrNotAllowed)
	}
	return nil
}

// autoAccept accepts offers from trusted contacts into the download folder
// when [files] auto_accept is "trusted".
func (n *Node) autoAccept(p peer.ID) (string, bool) {
	if n.cfg.Files.AutoAccept != AutoAcceptTrusted {
		return "", false
	}
	c, err := n.store.ContactByPeer(n.ctx, p)
	if err != nil || !c.Trusted || c.Blocked || c.Name == "" {
		return "", false
	}
	dir, err := n.cfg.DownloadDir()
	if err != nil {
		n.log.Warn("offer from a trusted contact left waiting: no download folder", "peer", p, "err", err)
		return "", false
	}
	return dir, true
}

// onTransfer publishes a files event on the node's event stream.
func (n *Node) onTransfer(ev files.Event) {
	info := n.transferInfo(n.ctx, ev.Transfer)
	info.Rate = ev.Rate
	n.events.Publish(Event{Type: EventTransfer, Kind: string(ev.Kind), PeerID: info.Peer, Transfer: &info})
}

func (n *Node) transferInfo(ctx context.Context, t files.Transfer) TransferInfo {
	info := TransferInfo{
		ID: t.ID.String(), Direction: string(t.Direction),
		Files: t.Files, Bytes: t.Bytes, DoneBytes: t.DoneBytes,
		State: string(t.State), Path: t.Path, Error: t.Error,
		Dir: t.Dir, Ticket: t.Ticket, CreatedAt: t.CreatedAt.UTC(),
	}
	// A ticket not fetched yet names no receiver (files records us).
	if t.Peer != "" && t.Peer != n.ID() {
		info.Peer, info.PeerName = t.Peer.String(), n.nameOf(ctx, t.Peer)
	}
	if t.Relay != "" {
		info.Relay = t.Relay.String()
	}
	if t.Direction == files.Out {
		info.Notified = t.Notified
		info.Names = topLevel(t.Sources)
	} else {
		info.Names = t.Names
	}
	return info
}

// withDefaultDir fills in, for offers waiting for an answer, the folder
// accepting them without one would use.
func (n *Node) withDefaultDir(info *TransferInfo) {
	if info.Direction != string(files.In) || info.State != string(files.StateOffered) || info.Dir != "" {
		return
	}
	if dir, err := n.cfg.DownloadDir(); err == nil {
		info.Dir = dir
	}
}

// Errors of the transfer methods, besides those of package files.
var (
	// ErrBadPath is returned for a path that is relative, missing or not a
	// folder where one is needed.
	ErrBadPath = errors.New("bad path")
	// ErrBadTransferID is returned for an ID that is not 4 to 32 hex digits.
	ErrBadTransferID = errors.New("not a transfer ID (4 to 32 hex digits)")
	// ErrAmbiguousID is returned for an ID prefix that matches more than one
	// transfer; the error lists them.
	ErrAmbiguousID = errors.New("ambiguous transfer ID")
	// ErrNotFileTicket is returned by ReceiveTicket for a ticket that names
	// a peer but no files.
	ErrNotFileTicket = errors.New("not a file ticket")
)

// topLevel names the items a user sent: of the local path of every entry
// (files lists them all, in manifest order), those whose folder is not
// itself an entry.
func topLevel(sources []string) []string {
	entries := make(map[string]bool, len(sources))
	for _, s := range sources {
		entries[s] = true
	}
	var names []string
	for _, s := range sources {
		if !entries[filepath.Dir(s)] {
			names = append(names, filepath.Base(s))
		}
	}
	return names
}
