package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newPingCmd(g *globals) *cobra.Command {
	var count int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Measure round trips to a peer and show the path taken",
		Long: `Find PEER (a peer ID or a ticket; contact names come with contacts), connect
to it, and measure round trips. Each line says the path: direct, or relayed
via which relay. A peer known only by its ID is looked up in the DHT.

Exit status: 0 when every round trip succeeded, 3 when the peer could not be
found or reached, 2 when PEER is not a peer ID or ticket.

JSON: one object per round trip: seq, peer_id, rtt_ms, path, relay, addr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return usageError{fmt.Errorf("--count must be at least 1")}
			}
			req := api.PingRequest{Peer: args[0], Count: count, IntervalMs: int(interval.Milliseconds())}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return c.Ping(ctx, req, func(r node.PingResult) { g.printPing(r) })
			})
		},
	}
	cmd.Flags().IntVarP(&count, "count", "c", 3, "number of round trips")
	cmd.Flags().DurationVarP(&interval, "interval", "i", time.Second, "time between round trips")
	g.addJSON(cmd)
	return cmd
}

func (g *globals) printPing(r node.PingResult) {
	if g.json {
		printJSON(g.stdout, r)
		return
	}
	via := r.Path
	if r.Relay != "" {
		via += " via " + r.Relay
	}
	fmt.Fprintf(g.stdout, "seq=%d %s rtt=%.2f ms path=%s addr=%s\n", r.Seq, r.PeerID, r.RTTMs, via, r.Addr)
}
