package main

import (
	"context"
	"fmt"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newContactsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contacts",
		Short: "Manage contacts: names for colleagues' peer IDs, trust and blocks",
		Long: `Contacts give colleagues' peer IDs names you can use wherever a PEER is
asked for. By default only contacts may send you messages ([messages] accept).
A blocked peer is refused at the connection gater: it cannot connect at all.`,
	}
	cmd.AddCommand(
		newContactsAddCmd(g), newContactsLsCmd(g), newContactsRmCmd(g),
		newContactsTrustCmd(g), newContactsBlockCmd(g, true), newContactsBlockCmd(g, false),
	)
	return cmd
}

func newContactsAddCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME TICKET|PEERID",
		Short: "Save a contact (names are unique)",
		Long: `Save a colleague under NAME: 1 to 64 letters, digits, '-', '_' or '.'. With a
ticket (from their kith id) their addresses are remembered too; with a bare
peer ID they are found through the DHT.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				ci, err := c.AddContact(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, ci)
				}
				fmt.Fprintf(g.stdout, "added %s (%s)\n", ci.Name, ci.PeerID)
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

func newContactsLsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List contacts, then blocked strangers",
		Long:  `List contacts. JSON: an array of {"name", "peer_id", "trusted", "blocked", "addrs"}.`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				cs, err := c.Contacts(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, cs)
				}
				for _, ci := range cs {
					flags := ""
					if ci.Trusted {
						flags += " trusted"
					}
					if ci.Blocked {
						flags += " blocked"
					}
					fmt.Fprintf(g.stdout, "%-20s %s%s\n", termtext.Escape(orDash(ci.Name)), ci.PeerID, flags)
				}
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newContactsRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a contact (a blocked one stays blocked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return c.RemoveContact(ctx, args[0])
			})
		},
	}
}

func newContactsTrustCmd(g *globals) *cobra.Command {
	var undo bool
	cmd := &cobra.Command{
		Use:   "trust NAME",
		Short: "Mark a contact trusted (--undo to take it back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return c.TrustContact(ctx, args[0], !undo)
			})
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "mark the contact not trusted")
	return cmd
}

func newContactsBlockCmd(g *globals, block bool) *cobra.Command {
	use, short := "block NAME|PEERID", "Refuse a peer: no connection, no message"
	if !block {
		use, short = "unblock NAME|PEERID", "Admit a blocked peer again"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				res, err := c.Block(ctx, args[0], block)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, res)
				}
				verb := "blocked"
				if !block {
					verb = "unblocked"
				}
				fmt.Fprintf(g.stdout, "%s %s\n", verb, res.PeerID)
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}
