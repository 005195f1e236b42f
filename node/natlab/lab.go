//go:build natlab

package natlab

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NAT is how a router translates the connections of the host behind it.
type NAT int

const (
	// Public puts a host directly on the public segment, with no router.
	Public NAT = iota
	// Cone is MASQUERADE: Linux keeps a connection's source port when it is
	// free, so a host that dials from its listening port is seen on the same
	// public port by everyone (endpoint-independent mapping): hole punching
	// works, as behind most home routers.
	Cone
	// Symmetric is MASQUERADE --random-fully: every connection gets a random
	// public port, so the port one peer observed is useless to another and
	// hole punching fails, as behind carrier-grade and some office NATs.
	Symmetric
)

func (n NAT) String() string {
	switch n {
	case Public:
		return "public"
	case Cone:
		return "cone"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NAT(%d)", int(n))
}

// HostSpec is one host of the lab.
type HostSpec struct {
	// Name is 1 to 8 lowercase letters and digits, unique in the lab
	// ("relay", "a", "b").
	Name string
	// NAT is Public for a host on the public segment; otherwise the host sits
	// alone on a LAN behind its own router of that kind.
	NAT NAT
	// Forward lists ports the router forwards (DNAT, TCP and UDP) from its
	// public address to the host, like a port-forward set up by hand.
	Forward []int
}

// Options describe a lab.
type Options struct {
	// Kith is the path of the kith binary the lab runs.
	Kith string
	// Hosts are created in order. Public hosts get 7.0.0.10, 7.0.0.11, ...;
	// the i-th host behind a router (from 1) gets 10.0.i.2/24 behind a
	// router at 10.0.i.1 whose public address is 7.0.0.i.
	Hosts []HostSpec
}

// Host is a host of the lab: a network namespace, its addresses and the kith
// home its processes use.
type Host struct {
	Name string
	// NS is the host's network namespace.
	NS string
	// Addr is the host's own IPv4 address.
	Addr string
	// PublicAddr is where the public segment reaches the host: Addr for a
	// public host, its router's public address otherwise.
	PublicAddr string
	// Router is the namespace of the host's router ("" for a public host).
	Router string
	// Home is the kith home of the host's processes.
	Home string
	NAT  NAT
}

// Lab is a sealed set of network namespaces: a public segment (a bridge in
// its own namespace, 7.0.0.0/24) and hosts on it or behind NAT routers.
type Lab struct {
	t     testing.TB
	kith  string
	id    string
	dir   string
	wan   string
	hosts map[string]*Host
	order []*Host

	mu         sync.Mutex
	namespaces []string
	procs      []*Proc
}

// Public segment and LAN addressing. 7.0.0.0/24 looks public on purpose:
// go-libp2p treats documentation and benchmark ranges as unroutable and its
// hole-punching service never starts without a public address. That is safe
// only because the lab is sealed (see checkSealed).
const (
	wanPrefix  = "7.0.0."
	wanMask    = "/24"
	lanMask    = "/24"
	firstPubIP = 10
)

// Skip skips t unless the lab can run here: root, ip(8) and iptables(8).
func Skip(t testing.TB) {
	t.Helper()
	if why := Unavailable(); why != "" {
		t.Skip(why)
	}
}

// Unavailable says why the lab cannot run here, or "" when it can.
func Unavailable() string {
	if u, err := user.Current(); err != nil || u.Uid != "0" {
		return "natlab: needs root (network namespaces and iptables)"
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("natlab: needs %s (apt-get install iproute2 iptables)", tool)
		}
	}
	return ""
}

// New builds the lab described by opts, checks that it is sealed, and tears
// all of it down when the test ends, whether it passed or not.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	Skip(t)
	if opts.Kith == "" {
		t.Fatal("natlab: Options.Kith is empty")
	}
	l := &Lab{t: t, kith: opts.Kith, id: labID(), hosts: map[string]*Host{}}
	dir, err := os.MkdirTemp("", "kl")
	if err != nil {
		t.Fatal(err)
	}
	l.dir = dir
	// Cleanups run last-registered first: processes stop (and their logs are
	// shown on failure) before the namespaces go.
	t.Cleanup(func() {
		l.deleteNamespaces()
		os.RemoveAll(dir)
	})
	t.Cleanup(l.stopAll)
	if err := l.build(opts.Hosts); err != nil {
		t.Fatalf("natlab: building the lab: %v", err)
	}
	if err := l.checkSealed(); err != nil {
		t.Fatalf("natlab: refusing to run, the lab is not sealed: %v", err)
	}
	l.startCapture()
	return l
}

// labID names this lab's namespaces: kl<test pid>-<random>, so labs of one
// run, of parallel runs and of earlier crashed runs never collide.
func labID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("kl%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// SweepStale deletes the namespaces of labs whose test process is gone (a
// run killed before its cleanups ran, e.g. by go test's -timeout). Only
// names this package makes are considered, and only for dead processes.
func SweepStale() error {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !labName.MatchString(f[0]) {
			continue
		}
		pid, _ := strconv.Atoi(labName.FindStringSubmatch(f[0])[1])
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // that run is alive
		}
		errs = append(errs, run("ip", "netns", "del", f[0]))
	}
	return errors.Join(errs...)
}

// hostName is what a host may be called: short enough for interface names
// (p-NAME, r-NAME) and namespace names.
var hostName = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// labName matches the namespaces labID names: kl<pid>-<6 hex>-<role>.
var labName = regexp.MustCompile(`^kl([0-9]+)-[0-9a-f]{6}-[a-z0-9]+$`)

// Host returns the host called name.
func (l *Lab) Host(name string) *Host {
	h, ok := l.hosts[name]
	if !ok {
		l.t.Fatalf("natlab: no host %q", name)
	}
	return h
}

// Colocate adds a host called name on h's machine: the same namespace, so
// the same address and, for a host behind a NAT, the same router, with a
// kith home of its own. A daemon started there is another kith user on that
// machine; to the relay it is one more colleague behind that NAT. It lets a
// test run more daemons than it builds namespaces for.
func (l *Lab) Colocate(h *Host, name string) *Host {
	l.t.Helper()
	if _, dup := l.hosts[name]; dup || !hostName.MatchString(name) {
		l.t.Fatalf("natlab: host name %q: not 1-8 lowercase letters and digits, or used twice", name)
	}
	home := filepath.Join(l.dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		l.t.Fatal(err)
	}
	c := *h
	c.Name, c.Home = name, home
	l.hosts[name] = &c // not in l.order: that lists each namespace once
	return &c
}

func (l *Lab) build(specs []HostSpec) error {
	l.wan = l.id + "-wan"
	if err := l.addNS(l.wan); err != nil {
		return err
	}
	if err := l.ipn(l.wan, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := l.ipn(l.wan, "link", "set", "br0", "up"); err != nil {
		return err
	}
	pub, priv := firstPubIP, 0
	for _, s := range specs {
		if _, dup := l.hosts[s.Name]; dup || !hostName.MatchString(s.Name) {
			return fmt.Errorf("host name %q: not 1-8 lowercase letters and digits, or used twice", s.Name)
		}
		home := filepath.Join(l.dir, s.Name)
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		h := &Host{Name: s.Name, NS: l.id + "-" + s.Name, Home: home, NAT: s.NAT}
		var err error
		if s.NAT == Public {
			h.Addr = fmt.Sprintf("%s%d", wanPrefix, pub)
			h.PublicAddr = h.Addr
			pub++
			err = l.addPublic(h)
		} else {
			priv++
			err = l.addPrivate(h, priv, s)
		}
		if err != nil {
			return fmt.Errorf("host %s: %w", s.Name, err)
		}
		l.hosts[s.Name] = h
		l.order = append(l.order, h)
	}
	return nil
}

// addNS creates a namespace with loopback up and IPv6 off (the lab is
// IPv4-only, so no link-local or multicast route appears).
func (l *Lab) addNS(ns string) error {
	if err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	if err := l.nsExec(ns, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return err
	}
	return l.ipn(ns, "link", "set", "lo", "up")
}

// veth creates a veth pair from namespace a (named aName there) to namespace
// b (named bName). It is created inside a with its peer directly in b, under
// temporary names, and renamed in each namespace: no end ever exists in the
// host's namespace.
func (l *Lab) veth(a, aName, b, bName string) error {
	tmp := "t" + l.id[len(l.id)-6:] + randHex(2)
	if err := l.ipn(a, "link", "add", tmp+"a", "type", "veth", "peer", "name", tmp+"b", "netns", b); err != nil {
		return err
	}
	if err := l.ipn(a, "link", "set", tmp+"a", "name", aName); err != nil {
		return err
	}
	return l.ipn(b, "link", "set", tmp+"b", "name", bName)
}

// wanPort plugs namespace ns into the public bridge as device dev with addr.
func (l *Lab) wanPort(ns, dev, addr, bridgePort string) error {
	if err := l.veth(l.wan, bridgePort, ns, dev); err != nil {
		return err
	}
	return l.seq(
		[]string{l.wan, "link", "set", bridgePort, "master", "br0"},
		[]string{l.wan, "link", "set", bridgePort, "up"},
		[]string{ns, "addr", "add", addr + wanMask, "dev", dev},
		[]string{ns, "link", "set", dev, "up"},
	)
}

func (l *Lab) addPublic(h *Host) error {
	if err := l.addNS(h.NS); err != nil {
		return err
	}
	return l.wanPort(h.NS, "eth0", h.Addr, "p-"+h.Name)
}

func (l *Lab) addPrivate(h *Host, i int, s HostSpec) error {
	if s.NAT != Cone && s.NAT != Symmetric {
		return fmt.Errorf("unknown NAT %v", s.NAT)
	}
	h.Router = l.id + "-r" + h.Name
	h.PublicAddr = fmt.Sprintf("%s%d", wanPrefix, i)
	lan := fmt.Sprintf("10.0.%d.", i)
	h.Addr = lan + "2"
	gw := lan + "1"
	for _, ns := range []string{h.Router, h.NS} {
		if err := l.addNS(ns); err != nil {
			return err
		}
	}
	if err := l.wanPort(h.Router, "wan0", h.PublicAddr, "r-"+h.Name); err != nil {
		return err
	}
	if err := l.veth(h.Router, "lan0", h.NS, "eth0"); err != nil {
		return err
	}
	if err := l.seq(
		[]string{h.Router, "addr", "add", gw + lanMask, "dev", "lan0"},
		[]string{h.Router, "link", "set", "lan0", "up"},
		[]string{h.NS, "addr", "add", h.Addr + lanMask, "dev", "eth0"},
		[]string{h.NS, "link", "set", "eth0", "up"},
		[]string{h.NS, "route", "add", "default", "via", gw, "dev", "eth0"},
	); err != nil {
		return err
	}
	return l.natRules(h, s)
}

// natRules make h.Router a NAT router: forwarding on, MASQUERADE on the
// public side, only established/related (or port-forwarded) traffic in, and
// unsolicited packets to the router itself dropped silently, as real routers
// do (without that the router answers with a reset and hole punching fails).
func (l *Lab) natRules(h *Host, s HostSpec) error {
	r := h.Router
	if err := l.nsExec(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"}
	if s.NAT == Symmetric {
		masq = append(masq, "--random-fully")
	}
	rules := [][]string{masq}
	for _, port := range s.Forward {
		p := fmt.Sprint(port)
		for _, proto := range []string{"tcp", "udp"} {
			rules = append(rules,
				[]string{"-t", "nat", "-A", "PREROUTING", "-i", "wan0", "-p", proto, "--dport", p,
					"-j", "DNAT", "--to-destination", h.Addr + ":" + p},
				[]string{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-p", proto, "-d", h.Addr, "--dport", p,
					"-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"})
		}
	}
	rules = append(rules,
		[]string{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		[]string{"-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT"},
		[]string{"-A", "FORWARD", "-j", "DROP"},
		[]string{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		[]string{"-A", "INPUT", "-i", "wan0", "-j", "DROP"},
	)
	for _, rule := range rules {
		if err := l.nsExec(r, "iptables", rule...); err != nil {
			return err
		}
	}
	return nil
}

// deleteNamespaces deletes every namespace of the lab, which removes its
// veths, its bridge and its iptables rules with it.
func (l *Lab) deleteNamespaces() {
	l.mu.Lock()
	nss := l.namespaces
	l.namespaces = nil
	l.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		if err := run("ip", "netns", "del", nss[i]); err != nil {
			l.t.Errorf("natlab: deleting namespace %s: %v", nss[i], err)
		}
	}
}

// ipn runs ip(8) inside namespace ns.
func (l *Lab) ipn(ns string, args ...string) error {
	if ns == "" {
		return fmt.Errorf("natlab: ip %v without a namespace", args)
	}
	return run("ip", append([]string{"-n", ns}, args...)...)
}

// seq runs ipn for each {ns, args...} in order, stopping at the first error.
func (l *Lab) seq(cmds ...[]string) error {
	for _, c := range cmds {
		if err := l.ipn(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// nsExec runs prog inside namespace ns (ip netns exec), never in ours.
func (l *Lab) nsExec(ns, prog string, args ...string) error {
	if ns == "" {
		return fmt.Errorf("natlab: %s %v without a namespace", prog, args)
	}
	return run("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
}

// nsOutput is nsExec returning standard output.
func (l *Lab) nsOutput(ns, prog string, args ...string) (string, error) {
	if ns == "" {
		return "", fmt.Errorf("natlab: %s %v without a namespace", prog, args)
	}
	return output("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
}

func run(prog string, args ...string) error {
	_, err := output(prog, args...)
	return err
}

func output(prog string, args ...string) (string, error) {
	cmd := exec.Command(prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startCapture records the public segment with tcpdump, when it is
// installed, for the failure report. It is diagnostics only: the lab runs
// the same without it.
func (l *Lab) startCapture() {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return
	}
	pcap := filepath.Join(l.dir, "wan.pcap")
	cmd := exec.Command("ip", "netns", "exec", l.wan, "tcpdump", "-i", "any", "-Q", "in", "--immediate-mode", "-n", "-U", "-s", "128", "-w", pcap)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return
	}
	// Wait (briefly) until it captures, so the first packets are in.
	// --immediate-mode: packets of the last second are not lost in a
	// capture buffer when it is stopped.
	listening := make(chan struct{})
	var said strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			said.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-listening:
	case <-time.After(5 * time.Second):
	}
	l.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if !l.t.Failed() {
			return
		}
		// Read inside the namespace, so interface names are the lab's.
		out, err := l.nsOutput(l.wan, "tcpdump", "-n", "-tttt", "-r", pcap)
		if err != nil {
			l.t.Logf("natlab: tcpdump: %v\n%s", err, said.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		l.t.Logf("natlab: last packets on the public segment, as they entered the bridge (tcpdump):\n%s",
			strings.Join(lines[max(0, len(lines)-200):], "\n"))
	})
}

// routerReport is the routers' packet counters, for the failure report.
func (l *Lab) routerReport() string {
	var b strings.Builder
	for _, h := range l.order {
		if h.Router == "" {
			continue
		}
		for _, table := range []string{"filter", "nat"} {
			out, err := l.nsOutput(h.Router, "iptables", "-t", table, "-L", "-v", "-n")
			if err != nil {
				out = err.Error()
			}
			fmt.Fprintf(&b, "--- router of %s (%s), table %s:\n%s", h.Name, h.NAT, table, out)
		}
	}
	return b.String()
}

// waitFor polls cond every interval until it returns true or timeout passes,
// and returns how long that took. It is for polling child processes (their
// status), never for waiting on time itself.
func waitFor(timeout, interval time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}
