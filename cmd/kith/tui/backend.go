package tui

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/api"
)

// Backend is what the UI needs from a node: the control API's client.
type Backend interface {
	Identity(ctx context.Context) (node.Identity, error)
	Status(ctx context.Context) (node.Status, error)
	Contacts(ctx context.Context) ([]node.ContactInfo, error)
	Messages(ctx context.Context, from string, after int64) ([]node.MessageInfo, error)
	Send(ctx context.Context, peer, text string) (node.MessageInfo, error)
	Rooms(ctx context.Context) ([]node.RoomInfo, error)
	JoinRoom(ctx context.Context, name string, secret []byte) (node.RoomInfo, error)
	LeaveRoom(ctx context.Context, name string) error
	SendRoom(ctx context.Context, room, text string) (node.RoomMessageInfo, error)
	RoomMessages(ctx context.Context, room string, limit int) ([]node.RoomMessageInfo, error)
	Transfers(ctx context.Context) ([]node.TransferInfo, error)
	Transfer(ctx context.Context, id string) (node.TransferInfo, error)
	AcceptTransfer(ctx context.Context, id, dir string, overwrite bool) (node.TransferInfo, error)
	RejectTransfer(ctx context.Context, id string) (node.TransferInfo, error)
	SendFiles(ctx context.Context, to string, paths []string) (node.TransferInfo, error)
	Events(ctx context.Context, ready func(), fn func(node.Event) error) error
}

var _ Backend = (*api.Client)(nil)

// Messages from the event pump.
type (
	// streamReadyMsg: the event subscription is live (again); what the
	// lists say from now on misses no event.
	streamReadyMsg struct{}
	// eventMsg is one node event.
	eventMsg struct{ ev node.Event }
	// streamDownMsg: the event stream ended; the pump retries.
	streamDownMsg struct{ err error }
)

// pump turns the node's event stream into tea messages on ch, resubscribing
// with a backoff when the stream ends (a daemon restart, or falling too far
// behind). Its goroutine is owned by the Model, which waits for it in Close.
type pump struct {
	ch chan tea.Msg
	wg sync.WaitGroup
}

// retryMax caps the wait between resubscriptions.
const retryMax = 10 * time.Second

func startPump(ctx context.Context, b Backend) *pump {
	p := &pump{ch: make(chan tea.Msg)}
	send := func(m tea.Msg) error {
		select {
		case p.ch <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.wg.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				send(panicMsg{fmt.Sprintf("%v\n%s", r, debug.Stack())})
			}
		}()
		wait := 500 * time.Millisecond
		for {
			err := b.Events(ctx, func() { send(streamReadyMsg{}) }, func(ev node.Event) error {
				wait = 500 * time.Millisecond
				return send(eventMsg{ev})
			})
			if ctx.Err() != nil || send(streamDownMsg{err}) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
		}
	})
	return p
}

// next is the command that delivers the pump's next message. One is
// outstanding at a time, so events reach Update in order.
func (p *pump) next(ctx context.Context) tea.Cmd {
	if p == nil { // not started: a Model driven without Init
		return nil
	}
	return func() tea.Msg {
		select {
		case m := <-p.ch:
			return m
		case <-ctx.Done():
			return nil
		}
	}
}
