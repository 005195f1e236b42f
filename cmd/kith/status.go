package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
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
peers in its DHT routing tables. With bootstrap peers configured it also says
whether it is connected to the DHT or, with every peer of its routing tables
gone (bootstrap nodes down), retrying them with back-off: how many rounds
failed, when the next runs and why the last failed.

JSON fields: peer_id, reachability, addrs, relays, peers [{peer_id, name,
path, relay, addr, rtt_ms}], dht_peers, bootstrap {state ("connected" or
"retrying"), failures, next_retry, last_error} (omitted without bootstrap
peers).`,
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
				if b := st.Bootstrap; b != nil {
					fmt.Fprintf(w, "bootstrap:    %s\n", bootstrapLine(b))
				}
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

// bootstrapLine is the text form of the bootstrap status.
func bootstrapLine(b *node.BootstrapStatus) string {
	if b.State == node.BootstrapConnected || b.Failures == 0 {
		return b.State
	}
	s := fmt.Sprintf("%s: %d failed rounds", b.State, b.Failures)
	if b.NextRetry != nil {
		s += fmt.Sprintf(", next in %s", max(time.Until(*b.NextRetry), 0).Round(time.Second))
	}
	if b.LastError != "" {
		s += " (" + termtext.Escape(b.LastError) + ")"
	}
	return s
}
