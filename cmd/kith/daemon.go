package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
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
			opts, stop, err := benchEnv()
			if err != nil {
				return err
			}
			defer stop()
			return g.runDaemon(cmd.Context(), cfg, "daemon", nil, opts)
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
// the node. ready, if not nil, runs once all are up; opts are extra node
// options.
func (g *globals) runDaemon(ctx context.Context, cfg node.Config, what string, ready func(*node.Node) error, opts []node.Option, services ...service) error {
	log, err := g.logger(slog.LevelInfo)
	if err != nil {
		return err
	}
	lock, err := node.LockHome(g.home)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	n, err := node.New(cfg, append([]node.Option{node.WithLogger(log)}, opts...)...)
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

// Benchmark-only environment of kith daemon (see README, Benchmarks). Both
// are off unless set; neither is meant for normal use.
const (
	// benchEnvVar=1 turns on the raw copy path that BenchmarkFileTransfer
	// measures kith against (node.WithBench, POST /v1/bench/copy).
	benchEnvVar = "KITH_BENCH"
	// cpuProfileEnvVar=FILE writes a CPU profile of the daemon's whole run
	// to FILE when it stops (SIGINT or SIGTERM; not after SIGKILL), for
	// profiling a daemon that a benchmark runs as a child process.
	cpuProfileEnvVar = "KITH_CPUPROFILE"
)

// benchEnv reads the benchmark-only environment: the node options it asks
// for, and a function to call when the daemon has stopped.
func benchEnv() ([]node.Option, func(), error) {
	var opts []node.Option
	if os.Getenv(benchEnvVar) == "1" {
		opts = append(opts, node.WithBench())
	}
	path := os.Getenv(cpuProfileEnvVar)
	if path == "" {
		return opts, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cpuProfileEnvVar, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", cpuProfileEnvVar, err)
	}
	return opts, func() { pprof.StopCPUProfile(); f.Close() }, nil
}
