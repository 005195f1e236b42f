package chat_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/kithnet/kith/chat"
	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/hostile"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// limitedHost is a loopback host whose resource manager holds go-libp2p's
// default limits and those of kith's services, as node builds it.
func limitedHost(t testing.TB, extra ...func(*rcmgr.ScalingLimitConfig)) host.Host {
	t.Helper()
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, f := range extra {
		f(&limits)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ResourceManager(rm), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// attackerOf is a hostile peer on a host of its own that knows victim.
func attackerOf(t testing.TB, victim host.Host) *hostile.Attacker {
	h := newHost(t, nil)
	know(h, victim)
	return hostile.New(h)
}

// B6 on /kith/dm/1.0.0: deadlines close slow and silent streams; a peer
// holds at most DMLimits' 4 such streams, and another peer is served.
func TestHostileDMSlowloris(t *testing.T) {
	nothingLost(t)
	const deadline = 500 * time.Millisecond
	b := startDM(t, limitedHost(t, chat.DMLimits), chat.DMConfig{FirstFrameTimeout: deadline, IdleTimeout: deadline})
	atk := attackerOf(t, b.h)
	var id [16]byte
	rand.Read(id[:])
	spec := hostile.DM(id, time.Now(), "slow")
	hostile.CheckDeadline(t, atk, b.h.ID(), spec, deadline)

	const longer = 3 * time.Second // the held streams must outlive the honest send
	c := startDM(t, limitedHost(t, chat.DMLimits), chat.DMConfig{FirstFrameTimeout: longer, IdleTimeout: longer})
	atk = attackerOf(t, c.h)
	honest := startDM(t, newHost(t, nil), chat.DMConfig{})
	know(honest.h, c.h)
	hostile.CheckPerPeerLimit(t, atk, c.h.ID(), spec, 4, longer, func() {
		if _, err := honest.dm.Send(t.Context(), c.h.ID(), "served meanwhile"); err != nil {
			t.Errorf("honest peer while the attacker holds its streams: %v", err)
		}
	})
	if got := len(c.store.received()); got != 1 {
		t.Errorf("victim stored %d messages, want the honest one", got)
	}
}

// B6 on /kith/history/1.0.0, with the history deadlines shortened.
func TestHostileHistorySlowloris(t *testing.T) {
	nothingLost(t)
	const deadline = 500 * time.Millisecond
	cfg := chat.RoomConfig{HistoryFirstFrame: deadline, HistoryIdle: deadline}
	v := newRoomNodeWith(t, limitedHost(t, chat.HistoryLimits), cfg)
	atk := attackerOf(t, v.h)
	spec := hostile.History("/kith/room/1/open/lobby", 10)
	hostile.CheckDeadline(t, atk, v.h.ID(), spec, deadline)
	const longer = 3 * time.Second
	w := newRoomNodeWith(t, limitedHost(t, chat.HistoryLimits), chat.RoomConfig{HistoryFirstFrame: longer, HistoryIdle: longer})
	atk = attackerOf(t, w.h)
	other := attackerOf(t, w.h) // a second peer: its own per-peer budget
	hostile.CheckPerPeerLimit(t, atk, w.h.ID(), spec, 4, longer, func() {
		st, err := other.Open(t.Context(), w.h.ID(), spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		st.Send(spec.Valid())
		// Not a member: refused, but answered, and at once.
		if ans := st.Answer(spec, waitBound); ans.Error == nil || ans.Error.Code != protocols.CodeNotAllowed {
			t.Errorf("another peer meanwhile: %+v, want NOT_ALLOWED", ans)
		}
	})
}

// newRoomNodeWith is a member on a host the test made, with a config.
func newRoomNodeWith(t testing.TB, h host.Host, cfg chat.RoomConfig) *roomNode {
	t.Helper()
	return buildRoomNode(t, h, cfg, nil)
}
