package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// MDNSService is the mDNS service name kith peers announce on the LAN.
const MDNSService = "_kith._udp"

// mdnsDiscovery connects to kith peers that announce themselves on the LAN.
type mdnsDiscovery struct {
	ctx  context.Context
	h    host.Host
	log  *slog.Logger
	wg   sync.WaitGroup
	svc  mdns.Service
	busy sync.Map // peer.ID -> struct{}: a dial is in progress
}

func startMDNS(ctx context.Context, h host.Host, log *slog.Logger) (*mdnsDiscovery, error) {
	d := &mdnsDiscovery{ctx: ctx, h: h, log: log}
	d.svc = mdns.NewMdnsService(h, MDNSService, d)
	if err := d.svc.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

// HandlePeerFound dials a peer found on the LAN unless already connected.
func (d *mdnsDiscovery) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == d.h.ID() || len(d.h.Network().ConnsToPeer(ai.ID)) > 0 {
		return
	}
	if _, dup := d.busy.LoadOrStore(ai.ID, struct{}{}); dup {
		return
	}
	d.wg.Go(func() {
		defer d.busy.Delete(ai.ID)
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		if err := d.h.Connect(ctx, ai); err != nil {
			d.log.Debug("mdns: dial failed", "peer", ai.ID, "err", err)
			return
		}
		d.log.Debug("mdns: connected", "peer", ai.ID)
	})
}

// Close stops announcing and waits for dials in progress.
func (d *mdnsDiscovery) Close() error {
	err := d.svc.Close()
	d.wg.Wait()
	return err
}
