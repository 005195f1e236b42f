//go:build natlab

package natlab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// Network faults on a running lab (RELIABILITY F9, F12): a router's link
// starved of bandwidth with tc, and a router given a new public address.

// SkipWithoutTC skips t unless the lab can run here and tc(8) is
// installed: Shape needs it.
func SkipWithoutTC(t testing.TB) {
	t.Helper()
	Skip(t)
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("natlab: needs tc (apt-get install iproute2)")
	}
}

// Shape limits the link of h's router to rate (tc syntax: "1mbit") both
// ways, with a token bucket filter: the router's public side (what h
// uploads) and its LAN side (what h downloads). Packets wait at most 400 ms
// in the bucket's queue and are dropped beyond it, as on a slow uplink with
// a modest buffer. Shape again to change the rate.
func (l *Lab) Shape(h *Host, rate string) error {
	if h.Router == "" {
		return fmt.Errorf("natlab: %s has no router to shape", h.Name)
	}
	for _, dev := range []string{"wan0", "lan0"} {
		err := l.nsExec(h.Router, "tc", "qdisc", "replace", "dev", dev, "root",
			"tbf", "rate", rate, "burst", "32kbit", "latency", "400ms")
		if err != nil {
			return err
		}
	}
	return nil
}

// Unshape removes the limit Shape set on h's router.
func (l *Lab) Unshape(h *Host) error {
	for _, dev := range []string{"wan0", "lan0"} {
		if err := l.nsExec(h.Router, "tc", "qdisc", "del", "dev", dev, "root"); err != nil {
			return err
		}
	}
	return nil
}

// Renumber gives h's router the public address addr instead of its own, as
// an ISP renumbering a home router does (a new DHCP lease, a reconnected
// PPP session). Removing the old address makes the kernel drop every
// MASQUERADE mapping made with it: every connection through the router is
// cut without a reset, and packets sent on them leave from the new address,
// where no peer expects them. addr must be a free address of the public
// segment; the lab checks again that it is sealed afterwards.
func (l *Lab) Renumber(h *Host, addr string) error {
	if h.Router == "" {
		return fmt.Errorf("natlab: %s has no router to renumber", h.Name)
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || !strings.HasPrefix(addr, wanPrefix) || !ip.Is4() {
		return fmt.Errorf("natlab: %q is not an address of the public segment %s0%s", addr, wanPrefix, wanMask)
	}
	for _, o := range l.order {
		if o.PublicAddr == addr || o.Addr == addr {
			return fmt.Errorf("natlab: %s is %s's address", addr, o.Name)
		}
	}
	// The old address goes first: deleting a primary address deletes its
	// secondaries with it.
	if err := l.seq(
		[]string{h.Router, "addr", "del", h.PublicAddr + wanMask, "dev", "wan0"},
		[]string{h.Router, "addr", "add", addr + wanMask, "dev", "wan0"},
	); err != nil {
		return err
	}
	h.PublicAddr = addr
	if err := l.checkSealed(); err != nil {
		return fmt.Errorf("natlab: the lab is not sealed after renumbering: %w", err)
	}
	return nil
}

// LinkStats are the counters of the bucket Shape put on the public side of
// a router (what its host uploads).
type LinkStats struct {
	Bytes      int64 `json:"bytes"`      // sent
	Dropped    int64 `json:"drops"`      // dropped: the queue was full
	Overlimits int64 `json:"overlimits"` // held back: the link was saturated
	Backlog    int64 `json:"backlog"`    // bytes waiting in the queue now
}

// linkStats reads the counters of the bucket on h's router's public side.
func (l *Lab) linkStats(h *Host) (LinkStats, error) {
	out, err := l.nsOutput(h.Router, "tc", "-s", "-j", "qdisc", "show", "dev", "wan0")
	if err != nil {
		return LinkStats{}, err
	}
	var qs []struct {
		Kind string `json:"kind"`
		LinkStats
	}
	if err := json.Unmarshal([]byte(out), &qs); err != nil {
		return LinkStats{}, fmt.Errorf("natlab: tc -j qdisc show: %w: %s", err, out)
	}
	for _, q := range qs {
		if q.Kind == "tbf" {
			return q.LinkStats, nil
		}
	}
	return LinkStats{}, fmt.Errorf("natlab: no tbf on %s's router: %s", h.Name, out)
}
