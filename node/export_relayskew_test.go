package node

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/record"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	gproto "google.golang.org/protobuf/proto"
)

// WithForcedPrivate makes a node on loopback use its relays from the
// start, as AutoNAT makes one behind a NAT do.
func WithForcedPrivate() Option {
	return func(o *options) { o.forcePrivate = true }
}

// WithRelayReservationTTL sets how long a relay keeps a reservation, and
// what a node with relays takes a kith relay's reservation lifetime to be
// (relayReservationTTL, an hour, outside tests).
func WithRelayReservationTTL(d time.Duration) Option {
	return func(o *options) { o.relayTTL = d }
}

// WithoutRelayKeeper leaves a node's reservations to go-libp2p's
// AutoRelay alone, as before kith kept them (relay_keep.go): the control.
func WithoutRelayKeeper() Option {
	return func(o *options) { o.noKeeper = true }
}

// WithRelayClock makes a relay state the times it sends as a clock off by
// skew would, and counts the reservations it grants in granted.
// go-libp2p's relay reads its clock in one place a peer sees: the expiry
// of a reservation (the STATUS answer's expire and the signed voucher's
// expiration, re-signed here with the relay's key). Everything else it
// does with that expiry compares it with its own clock, which the skew
// would shift alike, so the relay behaves as one whose clock is off.
func WithRelayClock(skew time.Duration, granted *atomic.Int64) Option {
	return func(o *options) {
		o.hopWrap = func(h host.Host, s network.Stream) network.Stream {
			return &skewedHopStream{Stream: s, h: h, skew: skew, granted: granted}
		}
	}
}

// skewedHopStream rewrites the reservation in each hop message written.
type skewedHopStream struct {
	network.Stream
	h       host.Host
	skew    time.Duration
	granted *atomic.Int64
	buf     []byte
}

func (s *skewedHopStream) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		n, k := binary.Uvarint(s.buf)
		if k <= 0 || uint64(len(s.buf)-k) < n {
			return len(p), nil
		}
		body := s.buf[k : k+int(n)]
		s.buf = s.buf[k+int(n):]
		out, err := s.rewrite(body)
		if err != nil {
			return 0, err
		}
		if _, err := s.Stream.Write(append(binary.AppendUvarint(nil, uint64(len(out))), out...)); err != nil {
			return 0, err
		}
	}
}

func (s *skewedHopStream) rewrite(body []byte) ([]byte, error) {
	var msg pbv2.HopMessage
	if err := gproto.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	rsvp := msg.GetReservation()
	if rsvp == nil {
		return body, nil
	}
	if msg.GetStatus() == pbv2.Status_OK {
		s.granted.Add(1)
	}
	expire := uint64(time.Unix(int64(rsvp.GetExpire()), 0).Add(s.skew).Unix())
	rsvp.Expire = &expire
	if rsvp.Voucher != nil {
		_, rec, err := record.ConsumeEnvelope(rsvp.Voucher, proto.RecordDomain)
		if err != nil {
			return nil, err
		}
		v := rec.(*proto.ReservationVoucher)
		v.Expiration = v.Expiration.Add(s.skew)
		env, err := record.Seal(v, s.h.Peerstore().PrivKey(s.h.ID()))
		if err != nil {
			return nil, err
		}
		if rsvp.Voucher, err = env.Marshal(); err != nil {
			return nil, err
		}
	}
	return gproto.Marshal(&msg)
}
