package files

import (
	"bytes"
	"testing"
	"time"

	"github.com/kithnet/kith/protocols"
	"github.com/kithnet/kith/protocols/hostile"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// limitedRM is a resource manager with go-libp2p's default limits and the
// files service's, as node builds it.
func limitedRM(t *testing.T) libp2p.Option {
	t.Helper()
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	Limits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		t.Fatal(err)
	}
	return libp2p.ResourceManager(rm)
}

// B6 on /kith/files/1.0.0: the frame deadline closes slow and silent
// streams; a peer holds at most Limits' 8 such streams, and another peer
// is served meanwhile.
func TestHostileFilesSlowloris(t *testing.T) {
	const deadline = 500 * time.Millisecond
	v := newNode(t, Config{FrameTimeout: deadline}, limitedRM(t))
	atk := attackerNode(t, v)
	spec := hostile.FilesFetch(protocols.Hash{1}, bytes.Repeat([]byte{2}, 16))
	hostile.CheckDeadline(t, atk, v.h.ID(), spec, deadline)

	const longer = 3 * time.Second
	w := newNode(t, Config{FrameTimeout: longer}, limitedRM(t))
	atk = attackerNode(t, w)
	other := attackerNode(t, w)
	hostile.CheckPerPeerLimit(t, atk, w.h.ID(), spec, 8, longer, func() {
		st, err := other.Open(t.Context(), w.h.ID(), spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		st.Send(spec.Valid())
		// An unknown transfer: refused, but answered, and at once.
		if ans := st.Answer(spec, waitBound); ans.Error == nil || ans.Error.Code != protocols.CodeUnknownTransfer {
			t.Errorf("another peer meanwhile: %+v, want UNKNOWN_TRANSFER", ans)
		}
	})
}

// attackerNode is a hostile peer on a host of its own that knows v.
func attackerNode(t *testing.T, v *tnode) *hostile.Attacker {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Peerstore().AddAddrs(v.h.ID(), v.h.Addrs(), peerstore.PermanentAddrTTL)
	return hostile.New(h)
}
