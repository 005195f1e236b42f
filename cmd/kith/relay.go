package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func newRelayCmd(g *globals) *cobra.Command {
	var f nodeFlags
	var announce, allow []string
	var allowFile, metrics string
	var closed bool
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run a relay and DHT bootstrap node for peers behind NAT",
		Long: `Run a circuit relay v2 service, a DHT server (the bootstrap node of the
private /kith DHT) and an AutoNAT server, in the foreground, with the same
control API as kith daemon. Once up it prints, one per line on stdout, the
multiaddrs colleagues pass to --bootstrap and --relay.

--announce sets the addresses to advertise (e.g. the public address of a
forwarded port); the relay then serves from the start, as it does when it
listens on an explicit public IP. Otherwise it relays only once AutoNAT
confirms it is reachable, and says so loudly until then. Every [relay]
reachability_check (15 s) it asks two connected colleagues to dial it back;
once none can (the forward was removed), it stops relaying, logs "not
reachable, not relaying", and its clients move to another relay.

Who may use it: the relay's contacts and the peers named by --allow or
--allow-file reserve slots and are relayed under [relay] circuit_duration
and circuit_data (2 h and 16 GiB by default). Others get go-libp2p's default
limits: a slot (at most 8 per IP address) and circuits of 2 min and 128 KiB,
enough to coordinate hole punching; with --closed they get nothing.
Colleagues behind one office NAT share an address: the relay admits [relay]
conns_per_ip (64) connections at once from one address, where go-libp2p
admits 8.

--metrics serves Prometheus metrics: libp2p's own (libp2p_relaysvc_*:
reservations, circuits, bytes relayed) and kith_relay_reservations_refused_total
and kith_relay_circuits_refused_total by reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(f)
			if err != nil {
				return err
			}
			cfg.Relay.Enabled = true
			if len(announce) > 0 {
				cfg.Relay.Announce = announce
			}
			cfg.Relay.Allow = append(cfg.Relay.Allow, allow...)
			if allowFile != "" {
				cfg.Relay.AllowFile = allowFile
			}
			cfg.Relay.Closed = cfg.Relay.Closed || closed
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			var services []service
			if metrics != "" {
				l, err := net.Listen("tcp", metrics)
				if err != nil {
					return usageError{fmt.Errorf("--metrics: %w", err)}
				}
				services = append(services, func(ctx context.Context, n *node.Node) error {
					return serveMetrics(ctx, n, l)
				})
			}
			return g.runDaemon(cmd.Context(), cfg, "relay", g.printRelayAddrs, nil, services...)
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringArrayVar(&announce, "announce", nil, "multiaddr to advertise instead of the observed ones (repeatable)")
	cmd.Flags().StringVar(&metrics, "metrics", "", "serve Prometheus metrics on this host:port at /metrics")
	cmd.Flags().StringArrayVar(&allow, "allow", nil, "peer ID allowed to reserve and be relayed (repeatable; contacts are allowed too)")
	cmd.Flags().StringVar(&allowFile, "allow-file", "", "file of allowed peer IDs, one per line")
	cmd.Flags().BoolVar(&closed, "closed", false, "refuse every peer that is not allowed")
	return cmd
}

func (g *globals) printRelayAddrs(n *node.Node) error {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
	if err != nil {
		return err
	}
	if g.json {
		s := make([]string, len(addrs))
		for i, a := range addrs {
			s[i] = a.String()
		}
		return printJSON(g.stdout, map[string]any{"peer_id": n.ID().String(), "addrs": s})
	}
	for _, a := range addrs {
		fmt.Fprintln(g.stdout, a)
	}
	return nil
}

// serveMetrics serves the node's Prometheus registry on l until ctx ends.
func serveMetrics(ctx context.Context, n *node.Node, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.Metrics(), promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
