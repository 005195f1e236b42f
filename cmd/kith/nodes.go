package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

// nodeFlags are the flags of commands that run a node; they override
// config.toml.
type nodeFlags struct {
	listen, bootstrap, relays []string
	noMDNS                    bool
}

func (f *nodeFlags) add(cmd *cobra.Command, relay bool) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.listen, "listen", nil, "listen multiaddr (repeatable; default TCP and QUIC on port 4011)")
	fl.StringArrayVar(&f.bootstrap, "bootstrap", nil, "bootstrap peer multiaddr ending in /p2p/ID (repeatable)")
	if !relay {
		fl.StringArrayVar(&f.relays, "relay", nil, "relay multiaddr ending in /p2p/ID to reserve a slot on behind NAT (repeatable)")
	}
	fl.BoolVar(&f.noMDNS, "no-mdns", false, "do not look for peers on the local network")
}

// loadConfig reads the home's config.toml and lays the flags over it.
func (g *globals) loadConfig(f nodeFlags) (node.Config, error) {
	cfg, err := node.LoadConfig(g.home)
	if err != nil {
		return cfg, usageError{err}
	}
	if len(f.listen) > 0 {
		cfg.Network.Listen = f.listen
	}
	if len(f.bootstrap) > 0 {
		cfg.Network.Bootstrap = f.bootstrap
	}
	if len(f.relays) > 0 {
		cfg.Network.Relays = f.relays
	}
	if f.noMDNS {
		off := false
		cfg.Network.MDNS = &off
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{fmt.Errorf("flags: %w", err)}
	}
	return cfg, nil
}

// withClient runs fn against the daemon serving the home or, when none
// runs, against a node embedded in this process for fn's duration.
func (g *globals) withClient(ctx context.Context, fn func(context.Context, *api.Client) error) error {
	c, err := dialDaemon(ctx, g.home)
	if err == nil {
		defer c.Close()
		return fn(ctx, c)
	}
	if !errors.Is(err, api.ErrNoDaemon) {
		return err
	}
	log, err := g.logger(slog.LevelWarn)
	if err != nil {
		return err
	}
	lock, err := node.LockHome(g.home)
	if errors.Is(err, node.ErrHomeInUse) {
		// A daemon is starting (it holds the lock, its socket is not up yet).
		if c, err := waitForDaemon(ctx, g.home); err == nil {
			defer c.Close()
			return fn(ctx, c)
		}
		return err
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	cfg, err := g.loadConfig(nodeFlags{})
	if err != nil {
		return err
	}
	n, err := node.New(cfg, node.WithLogger(log))
	if err != nil {
		return err
	}
	defer n.Close()
	c, stop := api.Embedded(n, log)
	defer stop()
	g.embedded = true
	return fn(ctx, c)
}

func dialDaemon(ctx context.Context, home string) (*api.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return api.Dial(ctx, home)
}

// waitForDaemon retries the socket of a daemon that is starting, for up to
// 10 s.
func waitForDaemon(ctx context.Context, home string) (*api.Client, error) {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		c, err := dialDaemon(ctx, home)
		if err == nil || !errors.Is(err, api.ErrNoDaemon) || time.Now().After(deadline) {
			if errors.Is(err, api.ErrNoDaemon) {
				return nil, fmt.Errorf("%w, but its API is not answering", node.ErrHomeInUse)
			}
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}
