package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
	"github.com/spf13/cobra"
)

// globals are the flags every command takes.
type globals struct {
	home     string
	json     bool
	logLevel string
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	embedded bool // the command runs its own node: no daemon for this home
}

func newRootCmd() *cobra.Command {
	g := &globals{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:   "kith",
		Short: "Terminal chat, direct file handoff and relays for colleagues",
		Long: `kith lets colleagues chat in the terminal, hand each other files securely and
directly, and run their own relay node, with no central server they do not control.

Every command takes --home DIR (default $KITH_HOME, else $XDG_CONFIG_HOME/kith,
else ~/.config/kith). Commands talk to the daemon running for that home, or run
a node of their own for their duration when none runs.

Rooms: kith room join NAME joins a group chat (open, or private with
--secret-file F or --private); kith room send, log, ls and leave use it.

Files: kith send PATH... --to PEER offers files to a contact (they answer with
kith transfers accept or reject); kith send PATH... prints a ticket and
serves the files to whoever runs kith receive TICKET.

Exit status: 0 the thing asked for happened; 1 failure; 2 bad flags,
arguments or config; 3 the peer could not be found or reached; 4 another
kith node already runs for this home; 5 the peer refused (you are not its
contact, it blocked you, or it rejected your files).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.resolveHome()
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.PersistentFlags().StringVar(&g.home, "home", "", "kith home directory (default $KITH_HOME, else $XDG_CONFIG_HOME/kith, else ~/.config/kith)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level on stderr: debug, info, warn, error (default info for daemon and relay, warn otherwise)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newInitCmd(g), newIDCmd(g), newDaemonCmd(g), newRelayCmd(g),
		newStatusCmd(g), newPingCmd(g), newDemoCmd(g),
		newContactsCmd(g), newMsgCmd(g), newInboxCmd(g),
		newSendCmd(g), newReceiveCmd(g), newTransfersCmd(g),
		newRoomCmd(g), newChatCmd(g),
	)
	return root
}

func (g *globals) resolveHome() error {
	if g.home != "" {
		return nil
	}
	h, err := node.DefaultHome()
	if err != nil {
		return err
	}
	g.home = h
	return nil
}

// addJSON adds --json to a command that prints a result.
func (g *globals) addJSON(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&g.json, "json", false, "print the result as JSON on stdout")
}

// logger returns a text logger on stderr at the chosen level.
func (g *globals) logger(def slog.Level) (*slog.Logger, error) {
	lvl := def
	if g.logLevel != "" {
		if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
			return nil, usageError{fmt.Errorf("--log-level: %w", err)}
		}
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// usageError marks a mistake in how a command was called (exit 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// exitError gives an error its exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// Exit codes. 0 means the thing asked for happened.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else went wrong
	exitUsage       = 2 // bad flags, arguments or config
	exitUnreachable = 3 // the peer could not be found or reached
	exitHomeInUse   = 4 // another node already runs for this home
	exitRefused     = 5 // the peer refused (not its contact, blocked, rejected the offer)
)

func exitCode(err error) int {
	var ue usageError
	var ee exitError
	var ae *api.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, node.ErrHomeInUse):
		return exitHomeInUse
	case errors.Is(err, node.ErrUnreachable), errors.As(err, &ae) && ae.Code == api.CodeUnreachable:
		return exitUnreachable
	case errors.As(err, &ae) && ae.Code == api.CodeRefused:
		return exitRefused
	case errors.As(err, &ae) && (ae.Code == api.CodeUnknownPeer || ae.Code == api.CodeBadRequest ||
		ae.Code == api.CodeNotFound || ae.Code == api.CodeConflict):
		return exitUsage
	default:
		return exitFailure
	}
}
