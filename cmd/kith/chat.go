package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/charmbracelet/x/term"
	"github.com/kithnet/kith/cmd/kith/tui"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

func newChatCmd(g *globals) *cobra.Command {
	var secretFile string
	cmd := &cobra.Command{
		Use:   "chat [ROOM]",
		Short: "The terminal chat UI: rooms, DMs, incoming offers, transfers",
		Long: `Open the terminal chat: rooms and direct-message conversations in a sidebar
with unread counts, the messages of the one in view, an input line, incoming
file offers as they arrive, a transfers view, and a status line with
reachability, peers and whether the peer in view is reached directly or
through a relay. With ROOM, opens that room, joining it first if needed
(--secret-file F for a private room).

Keys: Enter sends; Tab / Shift-Tab (or Ctrl-N / Ctrl-P) switch conversations;
PgUp / PgDn scroll; Ctrl-T shows transfers; Esc goes back; Ctrl-C quits. An
offer that pops up is answered with a (accept) or r (reject).

Commands: /join NAME [--secret-file F | --secret], /leave [NAME], /msg PEER
[TEXT], /send PATH, /accept [ID], /reject [ID], /transfers, /help, /quit.
A room secret is read from a file or asked for without echo, never typed on
a command line.

It needs a terminal on stdin and stdout; scripts use kith msg, kith room send
and kith inbox / kith room log --follow.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !term.IsTerminal(os.Stdin.Fd()) || !isTerminal(os.Stdout) {
				return usageError{errors.New("chat: stdin and stdout must be a terminal (scripts use kith msg, kith room send, kith inbox --follow, kith room log --follow)")}
			}
			var opts tui.Options
			if len(args) == 1 {
				opts.Room = args[0]
			}
			if secretFile != "" {
				if opts.Room == "" {
					return usageError{errors.New("chat: --secret-file needs a ROOM")}
				}
				secret, err := tui.ReadSecretFile(secretFile)
				if err != nil {
					return usageError{fmt.Errorf("chat: %w", err)}
				}
				opts.Secret = secret
			}
			return g.runChat(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the secret of the private ROOM")
	return cmd
}

// runChat runs the UI against the daemon, or a node of our own. Logs that
// would land in the middle of the screen are held and printed after it.
func (g *globals) runChat(ctx context.Context, opts tui.Options) (err error) {
	logs := &tailBuffer{max: 64 << 10}
	stderr := g.stderr
	g.stderr = logs
	defer func() {
		g.stderr = stderr
		if logs.Len() > 0 {
			stderr.Write(logs.Bytes())
		}
	}()
	defer restoreTerminal()()
	return g.withClient(ctx, func(ctx context.Context, c *api.Client) error {
		if g.embedded {
			opts.Notice = "no daemon runs for this home: this node runs only while kith chat does"
		}
		err := tui.Run(ctx, c, opts)
		if errors.Is(err, context.Canceled) {
			return nil // interrupted: as good as /quit
		}
		return err
	})
}

// restoreTerminal saves the terminal's state and returns the function that
// puts it back: on every exit and, before the panic goes on, on a panic
// that escaped bubbletea's own recovery (which restores it first).
func restoreTerminal() func() {
	fd := os.Stdin.Fd()
	state, err := term.GetState(fd)
	return func() {
		r := recover()
		if err == nil {
			term.Restore(fd, state)
		}
		if r != nil {
			// Leave the alternate screen, show the cursor, reset attributes.
			os.Stdout.WriteString("\x1b[?1049l\x1b[?25h\x1b[0m")
			panic(r)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.b)
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}
