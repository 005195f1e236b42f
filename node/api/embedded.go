package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/kithnet/kith/node"
)

// Embedded serves n's API in-process and returns a client for it: the path
// a command takes when no daemon runs for its home. stop shuts the server
// down; the node stays the caller's to close.
func Embedded(n *node.Node, log *slog.Logger) (c *Client, stop func()) {
	l := newMemListener()
	s := NewServer(n, log)
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(l) })
	c = NewClient(l.DialContext)
	return c, func() {
		c.Close()
		s.Shutdown(context.Background())
		l.Close()
		wg.Wait()
	}
}

// memListener is a net.Listener whose connections are in-memory pipes.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

var errListenerClosed = errors.New("api: listener closed")

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, errListenerClosed
	}
}

func (l *memListener) DialContext(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, errListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "kith-embedded" }
