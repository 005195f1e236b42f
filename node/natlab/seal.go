//go:build natlab

package natlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The prefixes a lab namespace may have routes to: the public segment, the
// LANs behind the routers, and loopback.
var labPrefixes = []netip.Prefix{
	netip.MustParsePrefix("7.0.0.0/24"),
	netip.MustParsePrefix("10.0.0.0/16"),
	netip.MustParsePrefix("127.0.0.0/8"),
}

type ipLink struct {
	Name     string `json:"ifname"`
	NetnsID  *int   `json:"link_netnsid"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

type ipNetnsID struct {
	ID   int    `json:"nsid"`
	Name string `json:"name"`
}

type ipRoute struct {
	Type    string `json:"type"`
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Table   string `json:"table"`
}

// checkSealed refuses a lab from which a packet could leave: every interface
// of every lab namespace must be loopback, the public bridge, or a veth whose
// other end is in another lab namespace; no veth of the host's namespace may
// end in the lab; and every route must stay inside the lab's prefixes, the
// only default route being a private host's, via its router.
func (l *Lab) checkSealed() error {
	lab := map[string]bool{}
	for _, ns := range l.namespaces {
		lab[ns] = true
	}
	var errs []error
	for _, ns := range l.namespaces {
		errs = append(errs, l.checkLinks(ns, lab), l.checkRoutes(ns))
	}
	errs = append(errs, checkHostSide(lab, l.id))
	return errors.Join(errs...)
}

func (l *Lab) checkLinks(ns string, lab map[string]bool) error {
	var links []ipLink
	if err := ipJSON(&links, "-n", ns, "-d", "link", "show"); err != nil {
		return err
	}
	names, err := nsidNames("-n", ns)
	if err != nil {
		return err
	}
	for _, k := range links {
		switch {
		case k.Name == "lo":
		case k.LinkInfo.Kind == "bridge" && ns == l.wan:
		case k.LinkInfo.Kind == "veth":
			if k.NetnsID == nil {
				return fmt.Errorf("%s: veth %s has no peer in another namespace", ns, k.Name)
			}
			if peer := names[*k.NetnsID]; !lab[peer] {
				return fmt.Errorf("%s: veth %s ends outside the lab (netns id %d %q)", ns, k.Name, *k.NetnsID, peer)
			}
		default:
			return fmt.Errorf("%s: unexpected interface %s (%s)", ns, k.Name, k.LinkInfo.Kind)
		}
	}
	return nil
}

// checkHostSide looks at the host's own namespace, read-only: none of its
// veths may end in a lab namespace, and none may carry a lab temporary name.
func checkHostSide(lab map[string]bool, id string) error {
	var links []ipLink
	if err := ipJSON(&links, "-d", "link", "show", "type", "veth"); err != nil {
		return err
	}
	names, err := nsidNames()
	if err != nil {
		return err
	}
	for _, k := range links {
		if k.NetnsID != nil && lab[names[*k.NetnsID]] {
			return fmt.Errorf("the host's namespace has veth %s into lab namespace %s", k.Name, names[*k.NetnsID])
		}
		if strings.HasPrefix(k.Name, "t"+id[len(id)-6:]) {
			return fmt.Errorf("the host's namespace has the lab's veth %s", k.Name)
		}
	}
	return nil
}

// checkRoutes allows routes to lab prefixes only, and a default route only
// on a private host, via its router's LAN address. IPv6 is off: no route.
func (l *Lab) checkRoutes(ns string) error {
	var v4, v6 []ipRoute
	if err := ipJSON(&v4, "-n", ns, "-4", "route", "show", "table", "all"); err != nil {
		return err
	}
	if err := ipJSON(&v6, "-n", ns, "-6", "route", "show", "table", "all"); err != nil {
		return err
	}
	if len(v6) > 0 {
		return fmt.Errorf("%s: has IPv6 routes (%+v); the lab is IPv4-only", ns, v6[0])
	}
	var gateway string // the one default route allowed, if any
	for _, h := range l.order {
		if h.NS == ns && h.Router != "" {
			gateway = strings.TrimSuffix(h.Addr, "2") + "1"
		}
	}
	for _, r := range v4 {
		if r.Dst == "default" {
			if gateway == "" || r.Gateway != gateway {
				return fmt.Errorf("%s: default route %+v leads out of the lab", ns, r)
			}
			continue
		}
		if !inLab(r.Dst) {
			return fmt.Errorf("%s: route to %s (%+v) leads out of the lab", ns, r.Dst, r)
		}
		if r.Gateway != "" && !inLab(r.Gateway) {
			return fmt.Errorf("%s: route %+v via a gateway outside the lab", ns, r)
		}
	}
	return nil
}

func inLab(dst string) bool {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		a, err := netip.ParseAddr(dst)
		if err != nil {
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	for _, lp := range labPrefixes {
		if lp.Bits() <= p.Bits() && lp.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// nsidNames maps the netns ids seen from a namespace (ip args select it) to
// namespace names; the host's own namespace has no name.
func nsidNames(args ...string) (map[int]string, error) {
	var ids []ipNetnsID
	if err := ipJSON(&ids, append(args, "netns", "list-id")...); err != nil {
		return nil, err
	}
	m := map[int]string{}
	for _, id := range ids {
		m[id.ID] = id.Name
	}
	return m, nil
}

func ipJSON(v any, args ...string) error {
	out, err := output("ip", append([]string{"-j"}, args...)...)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("ip %v: %w", args, err)
	}
	return nil
}
