package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

const (
	// yieldPingWait bounds opening a ping stream and each ping: a ping
	// unanswered that long means a dead connection, not a queue.
	yieldPingWait = 20 * time.Second
	// yieldPingGap is the least time between two pings: on a fast link a
	// round trip takes well under a millisecond.
	yieldPingGap = 2 * time.Millisecond
)

// connPinger pings the peer with libp2p's ping protocol (/ipfs/ping/1.0.0,
// which every kith node serves) on one given connection: the one whose
// queue a transfer makes, whichever the host would choose for a new stream.
// The protocol echoes every 32 bytes in order, so pings may be pipelined.
type connPinger struct {
	st   network.Stream
	sent chan [ping.PingSize]byte // awaiting their answer, in order
}

func openPinger(ctx context.Context, c network.Conn) (pinger, error) {
	st, err := c.NewStream(network.WithAllowLimitedConn(ctx, "files"))
	if err != nil {
		return nil, fmt.Errorf("files: open a ping stream: %w", err)
	}
	// The negotiation waits for the peer's answer, which a silent
	// connection never brings: ctx ends it, not only the deadline (a
	// transfer's end waits for this, TestOpenPingerEndsWithContext).
	defer context.AfterFunc(ctx, func() { st.Reset() })()
	st.SetDeadline(time.Now().Add(yieldPingWait))
	if err := msmux.SelectProtoOrFail(ping.ID, st); err != nil {
		st.Reset()
		return nil, fmt.Errorf("files: ping protocol: %w", err)
	}
	if err := st.SetProtocol(ping.ID); err != nil {
		st.Reset()
		return nil, err
	}
	if err := st.Scope().SetService(ping.ServiceName); err != nil {
		st.Reset()
		return nil, err
	}
	st.SetDeadline(time.Time{})
	return &connPinger{st: st, sent: make(chan [ping.PingSize]byte, yieldMaxPings)}, nil
}

func (p *connPinger) send() error {
	var b [ping.PingSize]byte
	rand.Read(b[:])
	p.st.SetWriteDeadline(time.Now().Add(yieldPingWait))
	if _, err := p.st.Write(b[:]); err != nil {
		return err
	}
	p.sent <- b
	return nil
}

func (p *connPinger) recv() error {
	want := <-p.sent
	var got [ping.PingSize]byte
	p.st.SetReadDeadline(time.Now().Add(yieldPingWait))
	if _, err := io.ReadFull(p.st, got[:]); err != nil {
		return err
	}
	if got != want {
		return errors.New("files: a ping came back changed")
	}
	return nil
}

func (p *connPinger) close() { p.st.Reset() }
