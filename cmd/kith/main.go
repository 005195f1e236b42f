// Command kith is terminal chat, direct file handoff and a relay node for
// colleagues, with no central server they do not control.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kith:", err)
	}
	os.Exit(exitCode(err))
}
