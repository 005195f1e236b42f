package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newSendCmd(g *globals) *cobra.Command {
	var to string
	var keep bool
	cmd := &cobra.Command{
		Use:   "send PATH... [--to PEER]",
		Short: "Send files and folders to a contact, or serve them for a ticket",
		Long: `With --to PEER (a contact name, peer ID or ticket): offer the files and
folders to PEER and wait until PEER accepted, received and verified them.
While PEER is offline the offer is retried until PEER's node holds it; then
it waits for PEER to accept (kith transfers accept on their side). Progress
goes to stderr: on a terminal one line redrawn in place (percent, bytes,
rate, ETA, and the path: direct or relayed via which relay), otherwise a line
every few seconds. Prints "done" once PEER verified everything. Ctrl-C
cancels the transfer.

Without --to: print a ticket (on stdout) that lets whoever holds it fetch the
files, and serve them until one receiver has fetched everything (--keep:
serve any number of receivers until Ctrl-C). On the other machine:
kith receive TICKET. The ticket carries a secret: share it only with the
receiver. When no daemon runs, this command is the node: keep it running
until the receiver is done.

A transfer that pauses (the peer went away, only a relay too limited for
files connects you, the receiver's disk is full) is retried; the command
says why and keeps waiting.

Exit status: 0 received and verified (ticket mode: fetched, or --keep ended
by Ctrl-C); 5 PEER rejected the offer or refuses files from you; 2 bad
arguments; 1 the transfer failed or was interrupted.

JSON (--json): one object per line on stdout: the transfer, as in
kith transfers --json, plus "kind" (state, offer or progress), for every
change until the end. In ticket mode the first line is {"ticket"}.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to != "" && keep {
				return usageError{errors.New("--keep serves a ticket; it does not go with --to")}
			}
			paths, err := sourcePaths(args)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				if to == "" {
					return g.share(ctx, c, paths, keep)
				}
				return g.sendTo(ctx, c, to, paths)
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "offer the files to this contact name, peer ID or ticket")
	cmd.Flags().BoolVar(&keep, "keep", false, "ticket mode: serve any number of receivers until interrupted")
	g.addJSON(cmd)
	return cmd
}

// sourcePaths makes the paths absolute (the daemon's working directory is
// not ours) and checks that they exist.
func sourcePaths(args []string) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, usageError{err}
		}
		if _, err := os.Lstat(p); err != nil {
			return nil, usageError{err}
		}
		out[i] = p
	}
	return out, nil
}

// sendTo offers paths to a peer and follows the transfer to its end.
func (g *globals) sendTo(ctx context.Context, c *api.Client, to string, paths []string) error {
	w, err := watchTransfers(ctx, c)
	if err != nil {
		return err
	}
	defer w.close()
	t, err := c.SendFiles(ctx, to, paths)
	if err != nil {
		return err
	}
	g.warn(t.Warnings)
	t, err = g.newFollower(t, transferLabel(t)).run(ctx, w)
	if errors.Is(err, errInterrupted) {
		g.cancelTransfer(ctx, c, t.ID)
		return err
	}
	if err != nil {
		return err
	}
	if err := ended(t); err != nil {
		return err
	}
	if !g.json {
		fmt.Fprintln(g.stdout, "done")
	}
	return nil
}

// ticketLine is the first line of `kith send --json` in ticket mode.
type ticketLine struct {
	Ticket string `json:"ticket"`
}

// share serves paths for a ticket until a receiver fetched them (or, with
// keep, until interrupted).
func (g *globals) share(ctx context.Context, c *api.Client, paths []string, keep bool) error {
	w, err := watchTransfers(ctx, c)
	if err != nil {
		return err
	}
	defer w.close()
	res, err := c.ShareFiles(ctx, paths, keep)
	if err != nil {
		return err
	}
	g.warn(res.Transfer.Warnings)
	if g.json {
		printJSON(g.stdout, ticketLine{res.Ticket})
	} else {
		fmt.Fprintln(g.stdout, res.Ticket)
	}
	g.shareHint(keep)
	t, err := g.newFollower(res.Transfer, transferLabel(res.Transfer)).run(ctx, w)
	if errors.Is(err, errInterrupted) {
		g.cancelTransfer(ctx, c, t.ID)
		if keep {
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	return ended(t)
}

func (g *globals) shareHint(keep bool) {
	until := "until a receiver has fetched everything"
	if keep {
		until = "until you press Ctrl-C"
	}
	fmt.Fprintln(g.stderr, "on the other machine: kith receive TICKET (the ticket above; it holds a secret: give it only to the receiver)")
	if g.embedded {
		fmt.Fprintf(g.stderr, "no daemon runs for this home: this command serves the files %s\n", until)
	} else {
		fmt.Fprintf(g.stderr, "serving %s\n", until)
	}
}

// warn prints what the node left out (symlinks, special files).
func (g *globals) warn(msgs []string) {
	for _, m := range msgs {
		fmt.Fprintln(g.stderr, "kith: warning:", termtext.Escape(m))
	}
}
