package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newMsgCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "msg PEER TEXT",
		Short: "Send a direct message; prints delivered or queued",
		Long: `Send TEXT (or, with "-", standard input) to PEER: a contact name, peer ID or
ticket. Prints "delivered" once the peer acknowledged the message (it is then
stored on their side), or "queued" when the peer could not be reached: the
daemon keeps retrying and delivers it, exactly once, when the peer is back.

Exit status: 0 delivered or queued; 5 the peer refused the message (you are
not their contact, or they blocked you); 2 bad arguments or text (empty,
over 64 KiB, not UTF-8).

JSON: {"id", "seq", "from", "to", "text", "sent_at", "state"}.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := messageText(args[1], os.Stdin)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				m, err := c.Send(ctx, args[0], text)
				if err != nil {
					return err
				}
				if m.State == "queued" && g.embedded {
					fmt.Fprintln(g.stderr, "kith: no daemon runs for this home: the message is delivered once `kith daemon` runs")
				}
				if g.json {
					return printJSON(g.stdout, m)
				}
				fmt.Fprintln(g.stdout, m.State)
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

// maxStdinText bounds what msg reads from stdin (the protocol's limit is
// enforced by the daemon with a clear error).
const maxStdinText = 1 << 20

func messageText(arg string, stdin io.Reader) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxStdinText+1))
	if err != nil {
		return "", fmt.Errorf("msg: read stdin: %w", err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}
