package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"text/tabwriter"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newTransfersCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "transfers",
		Short: "List file transfers; show, accept, reject or cancel one",
		Long: `List file transfers, newest first: ID (the first 8 of its 32 hex digits),
the other side, direction, files, size, progress, state and path (direct or
relayed). An ID argument of the subcommands is the full ID or any unique
prefix of at least 4 hex digits.

Incoming offers wait in state "offered": kith transfers show ID lists every
path they would be written to, then accept or reject them. With
[files] auto_accept = "trusted", offers from contacts marked trusted are
accepted into [files] download_dir at once.

States: offered, active, paused (stopped by something a retry may cure: the
peer went away, the disk is full), done, failed, rejected.

--follow keeps printing offers and changes of state as they happen.

JSON: an array of {"id", "peer", "peer_name", "direction": "in"/"out",
"files", "bytes", "done_bytes", "state", "path": "direct"/"relayed"/"",
"relay", "error", "names", "dir", "ticket", "created_at"}; with --follow,
one such object per line plus "kind" (state, offer or progress). Names and
errors come from peers: they are escaped in the table, raw in JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				if follow {
					return g.followTransfers(ctx, c)
				}
				ts, err := c.Transfers(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, ts)
				}
				printTransfers(g.stdout, ts)
				return nil
			})
		},
	}
	cmd.AddCommand(newTransfersShowCmd(g), newTransfersAcceptCmd(g),
		newTransfersAnswerCmd(g, "reject"), newTransfersAnswerCmd(g, "cancel"))
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing offers and state changes until interrupted")
	g.addJSON(cmd)
	return cmd
}

// followTransfers prints the stored transfers, then every offer and change
// as it happens (progress too with --json), until interrupted.
func (g *globals) followTransfers(ctx context.Context, c *api.Client) error {
	w, err := watchTransfers(ctx, c)
	if err != nil {
		return err
	}
	defer w.close()
	ts, err := c.Transfers(ctx)
	if err != nil {
		return err
	}
	for i := len(ts) - 1; i >= 0; i-- { // oldest first, as events come
		g.printTransferEvent(node.TransferState, ts[i])
	}
	fmt.Fprintln(g.stderr, "following transfers; Ctrl-C ends")
	for {
		select {
		case ev := <-w.events:
			if g.json || ev.Kind != node.TransferProgress {
				g.printTransferEvent(ev.Kind, *ev.Transfer)
			}
		case err := <-w.errc:
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			if err == nil {
				err = errors.New("transfers: the event stream ended (the daemon stopped, or this client fell too far behind)")
			}
			return err
		}
	}
}

func (g *globals) printTransferEvent(kind string, t node.TransferInfo) {
	if g.json {
		printJSON(g.stdout, transferLine{TransferInfo: t, Kind: kind})
		return
	}
	what := t.State
	if kind == node.TransferOffer {
		what = "offer (kith transfers show " + shortTransferID(t.ID) + ")"
	}
	fmt.Fprintf(g.stdout, "%s  %-3s %-16s %s  %s  %s\n", shortTransferID(t.ID), t.Direction,
		termtext.Escape(peerLabel(t)), termtext.Bytes(t.Bytes), termtext.Escape(namesText(t.Names)), termtext.Escape(what))
}

func printTransfers(w io.Writer, ts []node.TransferInfo) {
	if len(ts) == 0 {
		fmt.Fprintln(w, "no transfers")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPEER\tDIR\tFILES\tSIZE\tDONE\tSTATE\tPATH\tNAME")
	for _, t := range ts {
		peer := peerLabel(t)
		if t.Peer == "" {
			peer = "(ticket)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d%%\t%s\t%s\t%s\n", shortTransferID(t.ID), termtext.Escape(peer), t.Direction,
			t.Files, termtext.Bytes(t.Bytes), percent(t), t.State, orDash(t.Path), termtext.Escape(namesText(t.Names)))
	}
	tw.Flush()
}

// namesText is the first name and how many more.
func namesText(names []string) string {
	switch len(names) {
	case 0:
		return "-"
	case 1:
		return names[0]
	}
	return fmt.Sprintf("%s (+%d more)", names[0], len(names)-1)
}

func newTransfersShowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a transfer and every path it writes or reads",
		Long: `Show one transfer: the other side, state, size, path, error, and every file
and folder it holds. For an incoming transfer each is shown at the path it
would be (offered) or was (accepted) written to. Names come from the peer
and are escaped. JSON: the transfer as in kith transfers --json, plus
"entries": [{"path", "size", "dir"}].`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				t, err := c.Transfer(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, t)
				}
				printTransfer(g.stdout, t)
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

func printTransfer(w io.Writer, t node.TransferInfo) {
	fmt.Fprintf(w, "transfer   %s\n", t.ID)
	who := termtext.Escape(peerLabel(t))
	if t.Peer != "" && t.PeerName != "" {
		who += " (" + t.Peer + ")"
	}
	fmt.Fprintf(w, "peer       %s\n", who)
	fmt.Fprintf(w, "direction  %s\n", t.Direction)
	fmt.Fprintf(w, "state      %s\n", t.State)
	fmt.Fprintf(w, "size       %d files, %s (%s verified)\n", t.Files, termtext.Bytes(t.Bytes), termtext.Bytes(t.DoneBytes))
	if t.Path != "" {
		fmt.Fprintf(w, "path       %s\n", pathText(t))
	}
	if t.Error != "" {
		fmt.Fprintf(w, "error      %s\n", termtext.Escape(t.Error))
	}
	if t.Direction == "in" && t.Dir != "" {
		fmt.Fprintf(w, "folder     %s\n", termtext.Escape(t.Dir))
	}
	for _, l := range transferPaths(t) {
		fmt.Fprintf(w, "  %s\n", termtext.Escape(l))
	}
	if t.Direction == "in" && t.State == "offered" {
		id := shortTransferID(t.ID)
		fmt.Fprintf(w, "answer with: kith transfers accept %s [--dir D] [--overwrite]  or  kith transfers reject %s\n", id, id)
	}
}

// transferPaths lists every path of a transfer: for incoming ones where
// each file and folder lands, for outgoing ones what is sent.
func transferPaths(t node.TransferInfo) []string {
	base := func(p string) string { return p }
	if t.Direction == "in" && t.Dir != "" {
		base = func(p string) string { return filepath.Join(t.Dir, filepath.FromSlash(p)) }
	}
	var out []string
	for _, e := range t.Entries {
		switch {
		case e.Dir:
			out = append(out, base(e.Path)+string(filepath.Separator))
		default:
			out = append(out, fmt.Sprintf("%s  (%s)", base(e.Path), termtext.Bytes(e.Size)))
		}
	}
	if len(out) > 0 {
		return out
	}
	// The node did not list the entries: the top-level items are all that
	// is known.
	for _, n := range t.Names {
		out = append(out, base(path.Clean(n))+"  (top-level item; its contents are not listed)")
	}
	if len(out) == 0 {
		out = append(out, "(the node did not list the names)")
	}
	return out
}

func newTransfersAcceptCmd(g *globals) *cobra.Command {
	var dir string
	var overwrite, wait bool
	cmd := &cobra.Command{
		Use:   "accept ID",
		Short: "Accept an incoming offer",
		Long: `Accept an incoming offer into --dir (default: [files] download_dir, else
~/Downloads if it exists, else the downloads folder of the kith home). A name
that already exists is kept and the new file named "name (1).ext", unless
--overwrite. With a daemon running the daemon receives in the background
(kith transfers shows progress) unless --wait; without one this command
receives, with progress on stderr, until done.

Exit status: 0 accepted (with --wait or no daemon: received and verified);
2 no such offer, or it was already answered; 1 the transfer failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := receiveDir(dir, false)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return g.accept(ctx, c, args[0], d, overwrite, wait || g.embedded)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to receive into (default: [files] download_dir)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace existing files of the same name")
	cmd.Flags().BoolVar(&wait, "wait", false, "show progress and wait until everything is received")
	g.addJSON(cmd)
	return cmd
}

func (g *globals) accept(ctx context.Context, c *api.Client, id, dir string, overwrite, wait bool) error {
	if !wait {
		t, err := c.AcceptTransfer(ctx, id, dir, overwrite)
		if err != nil {
			return err
		}
		if g.json {
			return printJSON(g.stdout, t)
		}
		fmt.Fprintf(g.stdout, "accepted %s: receiving into %s\n", shortTransferID(t.ID), termtext.Escape(t.Dir))
		return nil
	}
	w, err := watchTransfers(ctx, c)
	if err != nil {
		return err
	}
	defer w.close()
	t, err := c.AcceptTransfer(ctx, id, dir, overwrite)
	if err != nil {
		return err
	}
	return g.followIncoming(ctx, w, t)
}

// newTransfersAnswerCmd is reject or cancel.
func newTransfersAnswerCmd(g *globals, verb string) *cobra.Command {
	short, long, done := "Reject an incoming offer",
		`Decline an incoming offer; the sender is told (their kith send exits 5).`, "rejected"
	if verb == "cancel" {
		short, long, done = "Stop a transfer for good",
			`Stop a transfer, in either direction, for good (state failed). A partial
download stays on disk as NAME.kith-partial.`, "cancelled"
	}
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long:  long + "\n\nExit status: 0 done; 2 no such transfer, or nothing to " + verb + ".\nJSON: the transfer.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				f := c.RejectTransfer
				if verb == "cancel" {
					f = c.CancelTransfer
				}
				t, err := f(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, t)
				}
				fmt.Fprintf(g.stdout, "%s %s\n", done, shortTransferID(t.ID))
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}
