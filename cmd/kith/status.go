package main

import (
	"context"
	"fmt"

	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show reachability, addresses, relays, peers and the DHT",
		Long: `Show what the node knows of itself and its connections: reachability as
AutoNAT last judged it (public, private or unknown), its addresses, the relays
it holds a reservation on, every connected peer with its path (direct or
relayed, and via which relay), address and round-trip time, and the number of
peers in its DHT routing tables.

JSON fields: peer_id, reachability, addrs, relays, peers [{peer_id, name,
path, relay, addr, rtt_ms}], dht_peers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, st)
				}
				w := g.stdout
				fmt.Fprintf(w, "peer ID:      %s\n", st.PeerID)
				fmt.Fprintf(w, "reachability: %s\n", st.Reachability)
				fmt.Fprintf(w, "dht peers:    %d\n", st.DHTPeers)
				for _, a := range st.Addrs {
					fmt.Fprintf(w, "address:      %s\n", a)
				}
				for _, r := range st.Relays {
					fmt.Fprintf(w, "relay:        %s\n", r)
				}
				fmt.Fprintf(w, "peers:        %d\n", len(st.Peers))
				for _, p := range st.Peers {
					via := p.Path
					if p.Relay != "" {
						via += " via " + p.Relay
					}
					fmt.Fprintf(w, "  %s  %s  %.1f ms  %s\n", p.PeerID, via, p.RTTMs, p.Addr)
				}
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}
