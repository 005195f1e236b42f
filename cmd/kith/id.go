package main

import (
	"context"
	"fmt"

	"github.com/kithnet/kith/node/api"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
)

func newIDCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print this node's peer ID, addresses and ticket",
		Long: `Print the peer ID, the addresses the node listens on, and a ticket: one
string with the peer ID and addresses that a colleague can paste into
kith ping, kith contacts add or kith msg.

JSON fields: peer_id, addrs, ticket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				id, err := c.Identity(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, id)
				}
				fmt.Fprintf(g.stdout, "peer ID: %s\n", id.PeerID)
				for _, a := range id.Addrs {
					fmt.Fprintf(g.stdout, "address: %s\n", a)
				}
				fmt.Fprintf(g.stdout, "ticket:  %s\n", id.Ticket)
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

func peerIDOf(key crypto.PrivKey) (peer.ID, error) {
	return peer.IDFromPrivateKey(key)
}
