package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newInboxCmd(g *globals) *cobra.Command {
	var from string
	var follow bool
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "List direct messages, received and sent, with their state",
		Long: `List direct messages, oldest first: received ones, and sent ones with their
state (queued until the peer acknowledged, then delivered; failed if the peer
refused). --from PEER keeps one conversation; --follow keeps printing new
messages and state changes as they happen.

JSON: one object per line: {"id", "seq", "from", "to", "name", "text",
"sent_at", "state"}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				if follow {
					return g.followInbox(ctx, c, from)
				}
				ms, err := c.Messages(ctx, from, 0)
				if err != nil {
					return err
				}
				for _, m := range ms {
					g.printMessage(m)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "only the conversation with this contact name, peer ID or ticket")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new messages until interrupted")
	g.addJSON(cmd)
	return cmd
}

// followInbox subscribes to events first, then prints what is stored, then
// what arrives, so nothing falls between the two.
func (g *globals) followInbox(ctx context.Context, c *api.Client, from string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	events := make(chan node.MessageInfo, 256)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(ctx, func() { close(ready) }, func(ev node.Event) error {
			if ev.Type == node.EventMessage && ev.Message != nil {
				events <- *ev.Message
			}
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		return err
	}
	ms, err := c.Messages(ctx, from, 0)
	if err != nil {
		return err
	}
	var peer string
	if from != "" && len(ms) > 0 {
		peer = otherSide(ms[0])
	}
	seen := make(map[string]string) // id -> last printed state
	for _, m := range ms {
		seen[m.ID] = m.State
		g.printMessage(m)
	}
	for {
		select {
		case m := <-events:
			if seen[m.ID] == m.State || (from != "" && !matchesPeer(m, from, peer)) {
				continue
			}
			seen[m.ID] = m.State
			g.printMessage(m)
		case err := <-errc:
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			if err == nil {
				err = errors.New("inbox: the event stream ended (the daemon stopped, or this client fell too far behind)")
			}
			return err
		}
	}
}

func otherSide(m node.MessageInfo) string {
	if m.State == "received" {
		return m.From
	}
	return m.To
}

// matchesPeer reports whether m is in the conversation --from names.
func matchesPeer(m node.MessageInfo, from, peerID string) bool {
	side := otherSide(m)
	return side == from || side == peerID || m.Name == from
}

func (g *globals) printMessage(m node.MessageInfo) {
	if g.json {
		printJSON(g.stdout, m)
		return
	}
	who := m.Name
	if who == "" {
		who = termtext.ShortID(otherSide(m))
	}
	arrow := "from"
	if m.State != "received" {
		arrow = "to"
	}
	fmt.Fprintf(g.stdout, "%s  %-4s %-16s %-9s  %s\n",
		m.SentAt.Local().Format("2006-01-02 15:04:05"), arrow, termtext.Escape(who), m.State, termtext.Escape(m.Text))
}
