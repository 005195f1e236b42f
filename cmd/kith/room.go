package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/kithnet/kith/protocols"
	"github.com/spf13/cobra"
)

func newRoomCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "room",
		Short: "Group chat rooms: join, ls, send, log, leave",
		Long: `Rooms are group chats over GossipSub. An open room is joined by name alone:
anyone who knows the name can read and post. A private room is joined by name
and a shared secret: its messages are sealed with a key derived from the
secret, and a peer without it can neither read nor post (nor tell which room
it is). Names are 1 to 64 bytes of a-z, 0-9, '-', '_' and '.', starting with
a letter or a digit.

The daemon stays in the rooms it joined across restarts. Messages are kept
after leaving a room, and kith room log still shows them.`,
	}
	cmd.AddCommand(newRoomJoinCmd(g), newRoomLsCmd(g), newRoomLeaveCmd(g), newRoomSendCmd(g), newRoomLogCmd(g))
	return cmd
}

func newRoomJoinCmd(g *globals) *cobra.Command {
	var secretFile string
	var private bool
	cmd := &cobra.Command{
		Use:   "join NAME [--secret-file F | --private]",
		Short: "Join an open room, or a private one with its secret",
		Long: `Join room NAME. Without a secret the room is open. A private room's secret
comes from a file, or is typed at a prompt; it is never an argument (others
on the machine can read argv), never printed and never logged:

  --secret-file F   read the secret from file F ("-": standard input); one
                    trailing newline is dropped; an empty secret is refused
  --private         prompt for the secret twice, without echo (standard
                    input must be a terminal)

A secret is 8 to 1024 bytes; everyone in the room must use the same one.
Deriving the room's key takes about half a second. Joining a room you are in
with the same secret does nothing; with another secret it is refused (leave
it first).

Exit status: 0 joined (or already a member); 2 bad name, secret or flags, or
already a member with another secret.

JSON: {"name", "private", "members", "messages", "joined_at"}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := roomSecret(secretFile, private, args[0], g.stdin, g.stderr)
			if err != nil {
				return err
			}
			defer clear(secret)
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				r, err := c.JoinRoom(ctx, args[0], secret)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, r)
				}
				fmt.Fprintf(g.stdout, "joined %s (%s)\n", r.Name, roomKind(r))
				if g.embedded {
					fmt.Fprintln(g.stderr, "kith: no daemon runs for this home: the room is joined, and kith daemon stays in it")
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&secretFile, "secret-file", "", `read the private room's secret from this file ("-": standard input)`)
	cmd.Flags().BoolVar(&private, "private", false, "prompt for the private room's secret (without echo)")
	g.addJSON(cmd)
	return cmd
}

func roomKind(r node.RoomInfo) string {
	if r.Private {
		return "private"
	}
	return "open"
}

func newRoomLsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the rooms you are in",
		Long: `List the rooms you are in, by name: open or private, how many other members
this node sees in the room now, and how many messages it holds.

JSON: an array of {"name", "private", "members", "messages", "joined_at"}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				rs, err := c.Rooms(ctx)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(g.stdout, rs)
				}
				if len(rs) == 0 {
					fmt.Fprintln(g.stderr, "no rooms: kith room join NAME joins one")
				}
				for _, r := range rs {
					fmt.Fprintf(g.stdout, "%-24s %-8s %3d %-7s  %5d %-8s  joined %s\n", r.Name, roomKind(r),
						r.Members, plural(r.Members, "member"), r.Messages, plural(r.Messages, "message"),
						r.JoinedAt.Local().Format("2006-01-02 15:04"))
				}
				return nil
			})
		},
	}
	g.addJSON(cmd)
	return cmd
}

func newRoomLeaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "leave NAME",
		Short: "Leave a room (its messages stay)",
		Long: `Leave room NAME: stop receiving its messages and forget it (and, for a
private room, its key). The messages stay; kith room log NAME shows them.

Exit status: 0 left; 2 not a member of NAME, or a bad name.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				if err := c.LeaveRoom(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "left %s\n", args[0])
				return nil
			})
		},
	}
}

func newRoomSendCmd(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "send NAME TEXT|-",
		Short: "Publish a message to a room",
		Long: `Publish TEXT (or, with "-", standard input, one trailing newline dropped) to
room NAME, and print "sent". The message is stored before it is published.

GossipSub delivers a message to the members online when it is published. A
daemon stays in the room, so members who come later can fetch what they
missed from it; when nobody else is online it says so on stderr. Without a
daemon this command runs a node only for its own duration: it waits up to
--wait for another member to show up, and when none does it sends nothing
and exits 3 (run kith daemon to stay in the room).

Exit status: 0 sent; 3 no daemon runs and no other member came online
within --wait (nothing sent); 2 not a member of NAME, or bad text (empty,
over 16 KiB, not UTF-8).

JSON: the message as kith room log --json prints it: {"id", "room", "from",
"name", "mine", "seq", "text", "sent_at", "received_at", "clock"}.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := messageText(args[1], g.stdin)
			if err != nil {
				return err
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				return g.roomSend(ctx, c, args[0], text, wait)
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Second, "without a daemon: how long to wait for another member to come online")
	g.addJSON(cmd)
	return cmd
}

// embeddedLinger is how long a node run by room send stays up after
// publishing: GossipSub hands the message to a queue per peer, written
// within milliseconds, and closing the node at once could cut it off.
const embeddedLinger = time.Second

func (g *globals) roomSend(ctx context.Context, c *api.Client, room, text string, wait time.Duration) error {
	// The node checks the text too; checking it first spares a wait for
	// members before a refusal.
	switch {
	case text == "":
		return usageError{errors.New("empty message: nothing to send")}
	case len(text) > protocols.MaxRoomText || !utf8.ValidString(text):
		return usageError{fmt.Errorf("a room message is at most %d bytes of UTF-8 text", protocols.MaxRoomText)}
	}
	members, err := roomMembers(ctx, c, room, g.embedded, wait)
	if err != nil {
		return err
	}
	if members == 0 && g.embedded {
		return exitError{exitUnreachable, fmt.Errorf("no other member of room %s came online within %s, so nothing was sent "+
			"(without a daemon, kith reaches only members online while it runs; kith daemon stays in the room)", room, wait)}
	}
	m, err := c.SendRoom(ctx, room, text)
	if err != nil {
		return err
	}
	if members == 0 {
		fmt.Fprintf(g.stderr, "kith: no other member of %s is online now: the message is stored here, "+
			"for members to fetch when they come\n", room)
	}
	if g.embedded {
		select {
		case <-time.After(embeddedLinger):
		case <-ctx.Done():
		}
	}
	if g.json {
		return printJSON(g.stdout, m)
	}
	fmt.Fprintln(g.stdout, "sent")
	return nil
}

// roomMembers returns how many other members of room this node sees. With
// wait set it polls, up to wait, until it sees one.
func roomMembers(ctx context.Context, c *api.Client, room string, poll bool, wait time.Duration) (int, error) {
	deadline := time.Now().Add(wait)
	for {
		rs, err := c.Rooms(ctx)
		if err != nil {
			return 0, err
		}
		i := -1
		for j, r := range rs {
			if r.Name == room {
				i = j
			}
		}
		if i < 0 {
			if err := node.CheckRoomName(room); err != nil {
				return 0, usageError{err}
			}
			return 0, usageError{fmt.Errorf("not a member of room %s (kith room ls lists yours; kith room join %s joins it)", room, room)}
		}
		if rs[i].Members > 0 || !poll || time.Now().After(deadline) {
			return rs[i].Members, nil
		}
		select {
		case <-ctx.Done():
			return 0, errInterrupted
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func newRoomLogCmd(g *globals) *cobra.Command {
	var follow bool
	var limit int
	cmd := &cobra.Command{
		Use:   "log NAME [--follow]",
		Short: "Show a room's messages, history included",
		Long: `Show room NAME's messages, oldest first, in the order every member shows
them (by the time the author stated, then author, then sequence). --limit N
shows the last N. --follow then keeps printing new messages as they arrive,
each once, until interrupted. Text from peers is shown with control
characters escaped.

Each line: time, author (contact name, else short peer ID; "me" for yours),
text.

Exit status: 0 listed (or, with --follow, interrupted); 2 a bad name, or a
room this node never joined and holds no message of; 1 the event stream
ended (the daemon stopped).

JSON: one object per line: {"id", "room", "from", "name", "mine", "seq",
"text", "sent_at", "received_at", "clock"}; id is the same on every member,
seq is the author's sequence number ("name" and "mine" are left out when
empty); sent_at is the time the author's clock stated, and the room's order
(the same on every member) is by clock, a logical clock in Unix
milliseconds that follows what the author had read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError{errors.New("--limit must be 0 (all) or more")}
			}
			return g.withClient(cmd.Context(), func(ctx context.Context, c *api.Client) error {
				if follow {
					return g.followRoom(ctx, c, args[0], limit)
				}
				ms, err := c.RoomMessages(ctx, args[0], limit)
				if err != nil {
					return err
				}
				for _, m := range ms {
					g.printRoomMessage(m)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new messages until interrupted")
	cmd.Flags().IntVar(&limit, "limit", 0, "show only the last N messages (0: all)")
	g.addJSON(cmd)
	return cmd
}

// followRoom subscribes to events first, then prints what is stored, then
// what arrives, so nothing falls between the two and nothing shows twice.
func (g *globals) followRoom(ctx context.Context, c *api.Client, room string, limit int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	events := make(chan node.RoomMessageInfo, 256)
	gaps := make(chan node.RoomGapInfo, 16)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(ctx, func() { close(ready) }, func(ev node.Event) error {
			if ev.Type == node.EventRoom && ev.Kind == node.RoomKindGap && ev.RoomGap != nil && ev.Room == room {
				select {
				case gaps <- *ev.RoomGap:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if ev.Type != node.EventRoom || ev.Kind != node.RoomKindMessage || ev.RoomMessage == nil || ev.Room != room {
				return nil
			}
			select {
			case events <- *ev.RoomMessage:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		return err
	}
	ms, err := c.RoomMessages(ctx, room, limit)
	if err != nil {
		return err
	}
	d := newRoomDedup()
	for _, m := range ms {
		if d.listed(m) {
			g.printRoomMessage(m)
		}
	}
	held := time.NewTimer(heldOwnFor)
	defer held.Stop()
	for {
		select {
		case m := <-events:
			if d.arrived(m) {
				g.printRoomMessage(m)
			}
		case gap := <-gaps:
			g.printRoomGap(gap)
		case <-held.C:
			for _, m := range d.release() {
				g.printRoomMessage(m)
			}
		case err := <-errc:
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			if err == nil {
				err = errors.New("room log: the event stream ended (the daemon stopped, or this client fell too far behind)")
			}
			return err
		}
	}
}

// heldOwnFor is how long --follow holds back one of our own messages that
// the listing shows before it was published (it has no ID yet), waiting
// for its event, which carries the ID.
const heldOwnFor = 2 * time.Second

// roomDedup keeps --follow from printing a message twice: once from the
// listing and once from the event stream. A message is known by author and
// seq. Our own message listed while it was being published has no ID yet,
// so it is held back until its event brings the ID, or heldOwnFor has
// passed.
type roomDedup struct {
	seen map[string]bool
	held map[string]node.RoomMessageInfo
}

func newRoomDedup() *roomDedup {
	return &roomDedup{seen: map[string]bool{}, held: map[string]node.RoomMessageInfo{}}
}

func roomKey(m node.RoomMessageInfo) string { return m.From + "/" + strconv.FormatUint(m.Seq, 10) }

// listed takes a message of the listing and says whether to print it now.
func (d *roomDedup) listed(m node.RoomMessageInfo) bool {
	k := roomKey(m)
	if m.ID == "" && m.Mine {
		d.held[k] = m
		return false
	}
	d.seen[k] = true
	return true
}

// arrived takes a message from the event stream and says whether to print
// it.
func (d *roomDedup) arrived(m node.RoomMessageInfo) bool {
	k := roomKey(m)
	if d.seen[k] {
		return false
	}
	if m.ID == "" && m.Mine { // not published yet: its next event has the ID
		d.held[k] = m
		return false
	}
	d.seen[k] = true
	delete(d.held, k)
	return true
}

// release returns the messages still held back, and forgets them.
func (d *roomDedup) release() []node.RoomMessageInfo {
	out := slices.Collect(maps.Values(d.held))
	for k := range d.held {
		d.seen[k] = true
	}
	clear(d.held)
	slices.SortFunc(out, func(a, b node.RoomMessageInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// printRoomGap tells, on stderr, that messages are missing and being
// asked for; those that come back are printed as they arrive.
func (g *globals) printRoomGap(gap node.RoomGapInfo) {
	who := gap.Name
	if who == "" {
		who = termtext.ShortID(gap.Author)
	}
	n := gap.To - gap.From + 1
	fmt.Fprintf(g.stderr, "(%d %s from %s missing; asking other members)\n", n, plural(int(min(n, 1<<30)), "message"), termtext.Escape(who))
}

func (g *globals) printRoomMessage(m node.RoomMessageInfo) {
	if g.json {
		printJSON(g.stdout, m)
		return
	}
	who := m.Name
	switch {
	case m.Mine:
		who = "me"
	case who == "":
		who = termtext.ShortID(m.From)
	}
	fmt.Fprintf(g.stdout, "%s  %-16s  %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), termtext.Escape(who), termtext.Escape(m.Text))
}

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
