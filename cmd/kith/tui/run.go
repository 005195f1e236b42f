package tui

import (
	"context"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// defaultStatusEvery is Run's status refresh period.
const defaultStatusEvery = 5 * time.Second

// Run shows the UI over b until the user quits or ctx ends, in the
// terminal's alternate screen. opts.Program can redirect input and output
// (tests drive it through a pipe or a pseudo-terminal). The terminal is
// restored on every exit, a panic included: bubbletea recovers panics in
// Update, View and commands, and the event pump hands its own to Update.
func Run(ctx context.Context, b Backend, opts Options) error {
	if opts.StatusEvery == 0 {
		opts.StatusEvery = defaultStatusEvery
	}
	m := New(ctx, b, opts)
	defer m.Close()
	po := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}, opts.Program...)
	_, err := tea.NewProgram(m, po...).Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	return nil
}

// panicMsg carries a panic of the event pump's goroutine to Update, which
// panics with it where bubbletea restores the terminal before reporting it.
type panicMsg struct{ v any }
