package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node in the foreground and serve the control API",
		Long: `Run this home's node in the foreground until SIGINT or SIGTERM. Logs go to
stderr. Other kith commands for the same home talk to it through the control
socket $HOME/kith.sock (mode 0600). A second daemon on the same home is
refused (exit 4); a socket left by a crashed daemon is replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(f)
			if err != nil {
				return err
			}
			return g.runDaemon(cmd.Context(), cfg, "daemon", nil)
		},
	}
	f.add(cmd, false)
	return cmd
}

// service is extra work a daemon runs beside its API (e.g. a metrics
// endpoint); it returns once ctx ends.
type service func(ctx context.Context, n *node.Node) error

// runDaemon holds the home's lock, runs a node, its API and services until
// ctx ends, then stops them in reverse order: API and services first, then
// the node. ready, if not nil, runs once all are up.
func (g *globals) runDaemon(ctx context.Context, cfg node.Config, what string, ready func(*node.Node) error, services ...service) error {
	log, err := g.logger(slog.LevelInfo)
	if err != nil {
		return err
	}
	lock, err := node.LockHome(g.home)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	n, err := node.New(cfg, node.WithLogger(log))
	if err != nil {
		return err
	}
	defer n.Close()
	l, err := api.Listen(g.home)
	if err != nil {
		return err
	}
	srv := api.NewServer(n, log)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return srv.Serve(l) })
	eg.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	for _, svc := range services {
		eg.Go(func() error { return svc(ctx, n) })
	}
	if ready != nil {
		if err := ready(n); err != nil {
			srv.Shutdown(context.Background())
			eg.Wait()
			return err
		}
	}
	log.Info(what+" ready", "peer_id", n.ID(), "api", api.SocketPath(g.home))
	err = eg.Wait()
	log.Info(what + " stopping")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
