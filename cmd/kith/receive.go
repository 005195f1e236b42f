package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newReceiveCmd(g *globals) *cobra.Command {
	var dir string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "receive TICKET",
		Short: "Fetch files by ticket, verify them, resume if interrupted",
		Long: `Fetch the files a ticket (from kith send without --to) names, from the peer
that serves them, into --dir (default: the current directory). Every chunk
is verified (BLAKE3) before it is written into place; a name that already
exists is kept and the new file named "name (1).ext", unless --overwrite.
Running the same command again after an interruption resumes where it
stopped. Progress goes to stderr; the final path of each received file or
folder is printed on stdout, escaped if it holds control characters.

With a daemon running, Ctrl-C leaves the daemon receiving in the background
(kith transfers shows it). Without one, this command is the node: run it
again to resume.

Exit status: 0 received and verified; 3 the serving peer could not be
reached; 2 not a file ticket, or a bad --dir; 1 the transfer failed or was
interrupted.

JSON (--json): one object per line on stdout: the transfer plus "kind", for
every change until the end (the last one holds "dir" and "names").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := receiveDir(dir, true)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return g.receive(ctx, c, args[0], d, overwrite)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to receive into (default: the current directory)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace existing files of the same name")
	g.addJSON(cmd)
	return cmd
}

// receiveDir makes --dir absolute; empty is the current directory when
// cwd, else left to the node (its download folder).
func receiveDir(dir string, cwd bool) (string, error) {
	if dir == "" && !cwd {
		return "", nil
	}
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", usageError{err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", usageError{fmt.Errorf("--dir: %w", err)}
	}
	if !fi.IsDir() {
		return "", usageError{fmt.Errorf("--dir: %s is not a folder", abs)}
	}
	return abs, nil
}

func (g *globals) receive(ctx context.Context, c *api.Client, ticket, dir string, overwrite bool) error {
	w, err := watchTransfers(ctx, c)
	if err != nil {
		return err
	}
	defer w.close()
	t, err := c.ReceiveTicket(ctx, ticket, dir, overwrite)
	if err != nil {
		return err
	}
	return g.followIncoming(ctx, w, t)
}

// followIncoming follows an incoming transfer to its end and prints where
// its files are.
func (g *globals) followIncoming(ctx context.Context, w *transferWatch, t node.TransferInfo) error {
	t, err := g.newFollower(t, transferLabel(t)).run(ctx, w)
	if errors.Is(err, errInterrupted) {
		if g.embedded {
			fmt.Fprintln(g.stderr, "kith: interrupted; run the same command again to resume")
		} else {
			fmt.Fprintf(g.stderr, "kith: the daemon keeps receiving in the background (kith transfers; kith transfers cancel %s stops it)\n",
				shortTransferID(t.ID))
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := ended(t); err != nil {
		return err
	}
	if !g.json {
		for _, p := range receivedPaths(t) {
			fmt.Fprintln(g.stdout, termtext.Escape(p))
		}
	}
	return nil
}
