package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run a relay and two peers on loopback and show kith working",
		Long: `Start, in this process and on 127.0.0.1 only, a relay/bootstrap node and two
peers (alice and bob) in temporary homes. The peers know only the relay's
address; each finds the other through the private DHT by peer ID alone, then
they ping each other, become contacts and exchange direct messages; they
talk in an open room and in a private one (with a generated secret); then alice
sends bob a 64 MiB file, which bob (who trusts alice) accepts at once, and the
demo checks that the file arrived whole. Everything is removed afterwards.
Exit 0 means every step worked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(slog.LevelWarn)
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), g.stdout, log)
		},
	}
}

// demoPeer is one node of the demo with its API client.
type demoPeer struct {
	name string
	n    *node.Node
	c    *api.Client
	stop func()
}

func (p *demoPeer) close() {
	p.stop()
	p.n.Close()
}

// loopback is where every demo node listens.
var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

func startDemoPeer(name, home string, log *slog.Logger, relay bool, bootstrap []string) (*demoPeer, error) {
	off := false
	cfg := node.Config{Home: home}
	// Demo peers accept files from the contacts they trust without asking,
	// into a folder of their temporary home.
	cfg.Files.AutoAccept = node.AutoAcceptTrusted
	cfg.Files.DownloadDir = node.DirPath(filepath.Join(home, "downloads"))
	cfg.Network.Listen = loopback
	cfg.Network.Bootstrap = bootstrap
	cfg.Network.MDNS = &off // find each other through the DHT, not the LAN
	cfg.Network.PortMapping = &off
	cfg.Relay.Enabled = relay
	n, err := node.New(cfg, node.WithLogger(log.With("demo", name)))
	if err != nil {
		return nil, fmt.Errorf("demo: start %s: %w", name, err)
	}
	c, stop := api.Embedded(n, log)
	return &demoPeer{name: name, n: n, c: c, stop: stop}, nil
}

// runDemo runs the demo, writing what happens to w.
func runDemo(ctx context.Context, w io.Writer, log *slog.Logger) error {
	root, err := os.MkdirTemp("", "kith-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	fmt.Fprintln(w, "kith demo: a relay and two peers on 127.0.0.1, in temporary homes")

	relay, err := startDemoPeer("relay", root+"/relay", log, true, nil)
	if err != nil {
		return err
	}
	defer relay.close()
	rid, err := relay.c.Identity(ctx)
	if err != nil {
		return err
	}
	boot := relayAddrs(rid)
	fmt.Fprintf(w, "  relay  %s  %s\n", rid.PeerID, boot[0])

	var peers []*demoPeer
	for _, name := range []string{"alice", "bob"} {
		p, err := startDemoPeer(name, root+"/"+name, log, false, boot)
		if err != nil {
			return err
		}
		defer p.close()
		peers = append(peers, p)
		fmt.Fprintf(w, "  %-5s  %s  (bootstrap: the relay only)\n", name, p.n.ID())
	}
	alice, bob := peers[0], peers[1]
	if err := demoPing(ctx, w, alice, bob); err != nil {
		return err
	}
	if err := demoPing(ctx, w, bob, alice); err != nil {
		return err
	}
	if err := demoMessages(ctx, w, alice, bob); err != nil {
		return err
	}
	if err := demoRooms(ctx, w, alice, bob); err != nil {
		return err
	}
	if err := demoFile(ctx, w, root, alice, bob); err != nil {
		return err
	}
	fmt.Fprintln(w, "demo passed")
	return nil
}

func relayAddrs(id node.Identity) []string {
	out := make([]string, 0, len(id.Addrs))
	for _, a := range id.Addrs {
		out = append(out, a+"/p2p/"+id.PeerID)
	}
	return out
}

// demoPing has from find to through the DHT by peer ID alone and ping it.
func demoPing(ctx context.Context, w io.Writer, from, to *demoPeer) error {
	st, err := from.c.Status(ctx)
	if err != nil {
		return err
	}
	// Not connected yet: the ping looks the peer up by ID. Its addresses
	// come from the DHT only: the lookup, or an earlier DHT answer that
	// named it (a bootstrap's self-lookup can), never from the demo.
	known := slices.ContainsFunc(st.Peers, func(p node.PeerStatus) bool { return p.PeerID == to.n.ID().String() })
	start := time.Now()
	var last node.PingResult
	req := api.PingRequest{Peer: to.n.ID().String(), Count: 3}
	if err := from.c.Ping(ctx, req, func(r node.PingResult) { last = r }); err != nil {
		return fmt.Errorf("demo: %s ping %s: %w", from.name, to.name, err)
	}
	how := "found through the DHT"
	if known {
		// The DHT's own queries can connect the two before the ping (a
		// bootstrap's self-lookup names its neighbours): the addresses still
		// came from the DHT.
		how = "found through the DHT, connected by an earlier DHT query"
	}
	fmt.Fprintf(w, "  %s -> %s: %s in %s; 3 pings, path %s, last rtt %.2f ms via %s\n",
		from.name, to.name, how, time.Since(start).Round(time.Millisecond), last.Path, last.RTTMs, last.Addr)
	if last.Path != node.PathDirect {
		return fmt.Errorf("demo: %s -> %s: expected a direct path, got %q", from.name, to.name, last.Path)
	}
	return nil
}

// demoMessages makes alice and bob contacts and has each send the other a
// direct message, acknowledged once stored.
func demoMessages(ctx context.Context, w io.Writer, alice, bob *demoPeer) error {
	for _, pair := range [][2]*demoPeer{{alice, bob}, {bob, alice}} {
		if _, err := pair[0].c.AddContact(ctx, pair[1].name, pair[1].n.ID().String()); err != nil {
			return fmt.Errorf("demo: %s adds %s: %w", pair[0].name, pair[1].name, err)
		}
	}
	for _, pair := range [][2]*demoPeer{{alice, bob}, {bob, alice}} {
		from, to := pair[0], pair[1]
		text := fmt.Sprintf("hello %s, this is %s", to.name, from.name)
		start := time.Now()
		m, err := from.c.Send(ctx, to.name, text)
		if err != nil {
			return fmt.Errorf("demo: %s messages %s: %w", from.name, to.name, err)
		}
		if m.State != "delivered" {
			return fmt.Errorf("demo: %s -> %s: message %s, want delivered", from.name, to.name, m.State)
		}
		got, err := to.c.Messages(ctx, from.name, 0)
		if err != nil || !slices.ContainsFunc(got, func(x node.MessageInfo) bool { return x.ID == m.ID && x.Text == text }) {
			return fmt.Errorf("demo: %s's inbox lacks the message from %s (%v)", to.name, from.name, err)
		}
		fmt.Fprintf(w, "  %s -> %s: message %q %s in %s (acked after %s stored it)\n",
			from.name, to.name, text, m.State, time.Since(start).Round(time.Microsecond), to.name)
	}
	return nil
}
