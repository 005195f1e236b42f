package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
)

// transferWatch is a subscription to the node's transfer events. It is
// opened before the request that creates a transfer, so none of that
// transfer's events is missed.
type transferWatch struct {
	events chan node.Event
	errc   chan error // the stream's end (nil: the node stopped or dropped us)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func watchTransfers(ctx context.Context, c *api.Client) (*transferWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &transferWatch{events: make(chan node.Event, 256), errc: make(chan error, 1), cancel: cancel}
	ready := make(chan struct{})
	w.wg.Go(func() {
		w.errc <- c.Events(ctx, func() { close(ready) }, func(ev node.Event) error {
			if ev.Type != node.EventTransfer || ev.Transfer == nil {
				return nil
			}
			select {
			case w.events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	select {
	case <-ready:
		return w, nil
	case err := <-w.errc:
		w.close()
		return nil, err
	}
}

// close ends the subscription and waits for its reader.
func (w *transferWatch) close() {
	w.cancel()
	w.wg.Wait()
}

// transferLine is one line of --json output: the transfer and what happened.
type transferLine struct {
	node.TransferInfo
	Kind string `json:"kind"`
}

// errInterrupted ends a command the user interrupted (SIGINT, SIGTERM).
var errInterrupted = errors.New("interrupted")

// waitNoteAfter is how long an offer may stay undelivered before the
// command says it is waiting for the peer to come online.
const waitNoteAfter = 3 * time.Second

// transferFollower reports one transfer until it ends: NDJSON on stdout with
// --json, progress and notes on stderr.
type transferFollower struct {
	g     *globals
	prog  *progress
	t     node.TransferInfo
	notes map[string]bool // notes already printed
}

func (g *globals) newFollower(t node.TransferInfo, label string) *transferFollower {
	f := &transferFollower{g: g, t: t, notes: map[string]bool{}}
	f.prog = newProgress(g.stderr, label)
	return f
}

// run reports t's events until it reaches a final state, the stream ends or
// ctx ends (errInterrupted). It returns the last state seen.
func (f *transferFollower) run(ctx context.Context, w *transferWatch) (node.TransferInfo, error) {
	f.report(node.TransferState, f.t)
	note := time.NewTimer(waitNoteAfter)
	defer note.Stop()
	for !final(f.t.State) {
		select {
		case ev := <-w.events:
			if ev.Transfer.ID == f.t.ID {
				f.report(ev.Kind, *ev.Transfer)
			}
		case <-note.C:
			f.noteWaiting(true)
		case err := <-w.errc:
			if ctx.Err() != nil {
				return f.t, errInterrupted
			}
			if err == nil {
				err = errors.New("the event stream ended (the daemon stopped, or this client fell too far behind)")
			}
			return f.t, err
		case <-ctx.Done():
			return f.t, errInterrupted
		}
	}
	f.prog.clear()
	return f.t, nil
}

func final(state string) bool { return state == "done" || state == "failed" || state == "rejected" }

// report prints one event: a JSON line, or progress and notes.
func (f *transferFollower) report(kind string, t node.TransferInfo) {
	prev := f.t
	f.t = t
	if len(t.Names) != len(prev.Names) {
		f.prog.label = termtext.Escape(transferLabel(t))
	}
	if f.g.json {
		printJSON(f.g.stdout, transferLine{TransferInfo: t, Kind: kind})
	}
	if kind == node.TransferProgress {
		if !f.g.json {
			f.prog.update(t)
		}
		return
	}
	if t.State != prev.State || t.Path != prev.Path || t.Notified != prev.Notified || kind == node.TransferOffer {
		f.noteState(prev, t)
	}
}

// noteState says what a change of state or path means.
func (f *transferFollower) noteState(prev, t node.TransferInfo) {
	who := peerLabel(t)
	switch t.State {
	case "offered":
		f.noteWaiting(false)
	case "active":
		if prev.State == "offered" {
			f.prog.start = f.prog.now() // the rate counts from the accept, not the offer
		}
		if prev.State != "active" || t.Path != prev.Path {
			f.prog.say("%s: %s", activeText(t, who), pathText(t))
		}
	case "paused":
		f.prog.say("paused: %s (retrying)", orDash(t.Error))
	case "done":
		f.prog.finish(t)
	case "rejected":
		f.prog.say("%s rejected the offer", who)
	case "failed":
		f.prog.say("failed: %s", orDash(t.Error))
	}
}

func activeText(t node.TransferInfo, who string) string {
	switch {
	case t.Direction == "in" && t.Ticket:
		return "receiving"
	case t.Direction == "in":
		return "receiving from " + who
	case t.Ticket:
		return "sending to " + who
	}
	return who + " accepted; sending"
}

// noteWaiting says, once each, why an offer has not moved yet: the peer's
// node does not hold it (offline), or nobody answered it. late is set when
// the offer has waited a few seconds.
func (f *transferFollower) noteWaiting(late bool) {
	t := f.t
	if t.State != "offered" || t.Direction != "out" || t.Ticket {
		return
	}
	who := peerLabel(t)
	var note string
	switch {
	case t.Notified:
		note = "waiting for " + who + " to accept"
	case late:
		note = "waiting for " + who + " to come online (the offer is retried until their node holds it)"
		if f.g.embedded {
			note += "; no daemon runs for this home, so only while this command runs"
		}
	}
	if note != "" && !f.notes[note] {
		f.notes[note] = true
		f.prog.say("%s", note)
	}
}

// peerLabel is the other side's contact name, else its short peer ID.
func peerLabel(t node.TransferInfo) string {
	switch {
	case t.PeerName != "":
		return t.PeerName
	case t.Peer != "":
		return termtext.ShortID(t.Peer)
	}
	return "the receiver"
}

// transferLabel names what moves, for the progress line: "report.pdf to
// ben", "3 items from ana".
func transferLabel(t node.TransferInfo) string {
	what := fmt.Sprintf("%d items", len(t.Names))
	switch {
	case len(t.Names) == 1:
		what = t.Names[0]
	case len(t.Names) == 0 && t.Files == 1:
		what = "1 file"
	case len(t.Names) == 0:
		what = fmt.Sprintf("%d files", t.Files)
	}
	if t.Direction == "in" {
		if t.Ticket {
			return what
		}
		return what + " from " + peerLabel(t)
	}
	if t.Ticket {
		return what
	}
	return what + " to " + peerLabel(t)
}

// ended turns a final state other than done into the command's error: exit
// 5 when the peer rejected the offer, 1 when the transfer failed.
func ended(t node.TransferInfo) error {
	switch t.State {
	case "done":
		return nil
	case "rejected":
		return exitError{exitRefused, fmt.Errorf("%s rejected the offer", termtext.Escape(peerLabel(t)))}
	}
	return fmt.Errorf("transfer %s failed: %s", shortTransferID(t.ID), termtext.Escape(orDash(t.Error)))
}

// receivedPaths are the final paths of an incoming transfer's top-level
// items.
func receivedPaths(t node.TransferInfo) []string {
	out := make([]string, len(t.Names))
	for i, n := range t.Names {
		out[i] = filepath.Join(t.Dir, n)
	}
	return out
}

func shortTransferID(id string) string { return id[:min(8, len(id))] }

// cancelOnInterrupt cancels transfer id after ctx ended, with a context of
// its own, and says so.
func (g *globals) cancelTransfer(ctx context.Context, c *api.Client, id string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.CancelTransfer(cctx, id); err != nil {
		fmt.Fprintf(g.stderr, "kith: could not cancel transfer %s: %v\n", shortTransferID(id), err)
		return
	}
	fmt.Fprintf(g.stderr, "kith: cancelled transfer %s\n", shortTransferID(id))
}
