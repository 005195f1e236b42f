package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kithnet/kith/node"
	"github.com/spf13/cobra"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create this home's identity and default config (idempotent)",
		Long: `Create the home directory (0700), an Ed25519 identity (identity.key, 0600)
and a config.toml listing every setting at its default. Running it again
changes nothing and prints the same peer ID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, created, err := node.LoadIdentity(g.home)
			if err != nil {
				return err
			}
			if err := writeDefaultConfig(g.home); err != nil {
				return err
			}
			id, err := peerIDOf(key)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(g.stderr, "created identity in %s\n", g.home)
			}
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
}

// writeDefaultConfig writes config.toml unless one exists.
func writeDefaultConfig(home string) error {
	path := filepath.Join(home, node.ConfigFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.WriteString(node.DefaultConfigText); err != nil {
		f.Close()
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	return f.Close()
}
