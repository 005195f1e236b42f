//go:build natlab

package natlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Faults of the relay (RELIABILITY F2, F13, L3): a port-forward removed
// from a relay's router, kith commands that run in the background (a
// `kith send` followed while the relay is killed), more public addresses
// for one host, and this test binary run inside a namespace as a crowd of
// relay clients.

// RemoveForward deletes the port-forward of port (TCP and UDP) from h's
// router, as an operator taking it off the router would: the DNAT rules
// and the FORWARD rules that admit what they translate, exactly as
// natRules added them (iptables -D fails on any other rule, so a drift
// between the two is an error, not a silent no-op). Connections forwarded
// before keep their conntrack entries and go on; new ones from the public
// side are dropped silently, as every unsolicited packet is.
func (l *Lab) RemoveForward(h *Host, port int) error {
	if h.Router == "" {
		return fmt.Errorf("natlab: %s is public: no router, no forward", h.Name)
	}
	p := fmt.Sprint(port)
	for _, proto := range []string{"tcp", "udp"} {
		for _, rule := range [][]string{
			{"-t", "nat", "-D", "PREROUTING", "-i", "wan0", "-p", proto, "--dport", p,
				"-j", "DNAT", "--to-destination", h.Addr + ":" + p},
			{"-D", "FORWARD", "-i", "wan0", "-o", "lan0", "-p", proto, "-d", h.Addr, "--dport", p,
				"-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"},
		} {
			if err := l.nsExec(h.Router, "iptables", rule...); err != nil {
				return fmt.Errorf("natlab: removing the forward of %s/%s: %w", p, proto, err)
			}
		}
	}
	return nil
}

// AddPublicAddrs gives public host h more addresses on the public segment,
// 7.0.0.first, 7.0.0.first+1, ... (n of them, as /32s on its link: no new
// route, so the lab stays sealed), and returns them. A process that binds
// one of them is, to everyone else, a host of its own.
func (l *Lab) AddPublicAddrs(h *Host, first, n int) ([]string, error) {
	if h.Router != "" {
		return nil, fmt.Errorf("natlab: %s is behind a router", h.Name)
	}
	if first <= firstPubIP+len(l.order) || first+n > 255 {
		return nil, fmt.Errorf("natlab: addresses 7.0.0.%d-%d clash with the lab's own", first, first+n-1)
	}
	var out []string
	for i := range n {
		a := fmt.Sprintf("%s%d", wanPrefix, first+i)
		if err := l.ipn(h.NS, "addr", "add", a+"/32", "dev", "eth0"); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// background starts `kith --home HOME args...` inside h's namespace without
// waiting for anything (Start waits for a daemon's "ready"): for commands
// that run until their work is done, such as `kith send --json`, read with
// Line and Stdout. It is stopped when the test ends, and its standard error
// is shown if the test failed.
func (l *Lab) background(h *Host, args ...string) *Proc {
	l.t.Helper()
	cmd := l.kithCmd(context.Background(), h, args...)
	p := &Proc{Host: h, Verb: args[0], cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{}), start: time.Now()}
	stderr, _ := cmd.StderrPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("natlab: %s: start kith %v: %v", h.Name, args, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.scan(stderr, func(line string) { p.stderr.WriteString(line + "\n") }) })
	wg.Go(func() {
		p.scan(stdout, func(line string) {
			p.stdout = append(p.stdout, line)
			select {
			case p.lines <- line:
			default: // nobody reads that far; Stdout still has it
			}
		})
	})
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	return p
}

// exitCode waits up to timeout for p to exit and returns its exit code;
// ok is false if it is still running.
func exitCode(p *Proc, timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Helper is this test binary running inside a lab namespace in a helper
// mode (see TestMain): its standard input and output are the test's to
// talk to, line by line.
type Helper struct {
	Host  *Host
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan struct{}

	mu     sync.Mutex
	stderr strings.Builder
}

// RunHelper starts this test binary inside h's namespace with env (NAME=VALUE
// settings that select and configure its helper mode). It is killed when the
// test ends; its standard error is logged if the test failed.
func (l *Lab) RunHelper(h *Host, env ...string) (*Helper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", h.NS, self)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	hp := &Helper{Host: h, cmd: cmd, in: in, lines: make(chan string, 1024), done: make(chan struct{})}
	errR, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		p := &Proc{}
		p.scan(out, func(line string) { hp.lines <- line })
	})
	wg.Go(func() {
		p := &Proc{}
		p.scan(errR, func(line string) {
			hp.mu.Lock()
			hp.stderr.WriteString(line + "\n")
			hp.mu.Unlock()
		})
	})
	go func() { wg.Wait(); cmd.Wait(); close(hp.done) }()
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		<-hp.done
		if l.t.Failed() {
			l.t.Logf("natlab: --- stderr of the helper in %s (%v):\n%s", h.Name, cmd.ProcessState, hp.Stderr())
		}
	})
	return hp, nil
}

// Send writes one line to the helper's standard input.
func (hp *Helper) Send(line string) error {
	_, err := fmt.Fprintln(hp.in, line)
	return err
}

// Line returns the helper's next line on standard output, waiting up to
// timeout.
func (hp *Helper) Line(timeout time.Duration) (string, error) {
	select {
	case l := <-hp.lines:
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("the helper in %s printed nothing for %v", hp.Host.Name, timeout)
	case <-hp.done:
		select {
		case l := <-hp.lines:
			return l, nil
		default:
		}
		return "", fmt.Errorf("the helper in %s exited (%v): %s", hp.Host.Name, hp.cmd.ProcessState, lastLines(hp.Stderr(), 20))
	}
}

// Stderr is what the helper wrote to standard error so far.
func (hp *Helper) Stderr() string {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return hp.stderr.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Relay reservation churn (RELIABILITY L3): this test binary, run inside a
// lab namespace with ChurnEnv set, is a crowd of lightweight relay clients
// (plain go-libp2p hosts, TCP only, with deterministic identities the relay
// allows), driven line by line on standard input:
//
//	(start)      every client connects and reserves, the starts spread over
//	             ChurnConfig.Spread; then it prints {"event":"all",...}
//	churn DUR    each client, over and over for DUR: holds its reservation a
//	             while, disconnects (closes its host), pauses, and restarts
//	             (a new host, a new connection, the same peer ID) and
//	             reserves again; one restart in three reserves on the new
//	             connection before the old one closes, as a client that
//	             crashed and came back before the relay noticed. It ends
//	             holding a reservation, prints {"event":"churned",...}
//	stop         every client closes; it prints {"event":"stopped"}, exits
//
// Each reservation is tried for up to churnCycleLimit, with a new
// connection after each failure; the report counts refusals (the relay
// answered no), transient failures (a connection or stream that broke) and
// cycles that never got a reservation.

// ChurnEnv, when set, makes the test binary a churn helper; its value is the
// ChurnConfig as JSON.
const ChurnEnv = "NATLAB_CHURN"

// ChurnConfig configures a churn helper.
type ChurnConfig struct {
	Relay  string   // the relay's TCP multiaddr, with /p2p/ID
	Seeds  []int    // one client per seed: its identity is ChurnKey(seed)
	Bind   []string // per client, the local IP to dial from ("" for any)
	Spread time.Duration
	// Each client holds a reservation for HoldMin-HoldMax, then pauses
	// PauseMin-PauseMax before it restarts.
	HoldMin, HoldMax, PauseMin, PauseMax time.Duration
}

// ChurnReport is what a churn helper prints, one JSON object per line.
type ChurnReport struct {
	Event    string `json:"event"`
	Clients  int    `json:"clients"`
	Reserved int    `json:"reserved"` // clients holding a reservation now
	// Cycles are the reservations obtained since the previous report.
	Cycles    int            `json:"cycles"`
	Refused   map[string]int `json:"refused,omitempty"` // by the relay's status
	Transient int            `json:"transient"`         // failed attempts later retried
	Failed    int            `json:"failed"`            // cycles with no reservation within churnCycleLimit
	Errors    []string       `json:"errors,omitempty"`  // the first three, for the failure report
	// Took are the times from a client's (re)start to its reservation.
	TookP50 time.Duration `json:"took_p50"`
	TookP99 time.Duration `json:"took_p99"`
	TookMax time.Duration `json:"took_max"`
}

// churnCycleLimit bounds one client's attempts at one reservation.
const churnCycleLimit = 30 * time.Second

// ChurnKey is the identity of churn client seed: deterministic, so the test
// can allow it on the relay before the client exists.
func ChurnKey(seed int) crypto.PrivKey {
	s := sha256.Sum256(fmt.Appendf(nil, "kith natlab churn client %d", seed))
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(s[:]))
	if err != nil {
		panic(err) // reading 32 bytes from a 32-byte reader cannot fail
	}
	return k
}

// ChurnHelper runs the churn helper (see ChurnEnv) and returns its exit
// code.
func ChurnHelper(cfgJSON string) int {
	var cfg ChurnConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "churn helper:", err)
		return 2
	}
	relay, err := peer.AddrInfoFromString(cfg.Relay)
	if err != nil {
		fmt.Fprintln(os.Stderr, "churn helper:", err)
		return 2
	}
	c := &crowd{cfg: cfg, relay: *relay, out: json.NewEncoder(os.Stdout)}
	for i, seed := range cfg.Seeds {
		cl := &churnClient{crowd: c, key: ChurnKey(seed)}
		if i < len(cfg.Bind) && cfg.Bind[i] != "" {
			cl.bind = net.ParseIP(cfg.Bind[i])
		}
		c.clients = append(c.clients, cl)
	}
	c.all()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch cmd {
		case "churn":
			d, err := time.ParseDuration(arg)
			if err != nil {
				fmt.Fprintln(os.Stderr, "churn helper:", err)
				return 2
			}
			c.churn(d)
		case "stop":
			c.stop()
			return 0
		}
	}
	c.stop()
	return 0
}

// crowd is a churn helper's clients and their counts.
type crowd struct {
	cfg     ChurnConfig
	relay   peer.AddrInfo
	clients []*churnClient
	out     *json.Encoder

	mu        sync.Mutex
	cycles    int
	refused   map[string]int
	transient int
	failed    int
	errors    []string
	took      []time.Duration
}

// all has every client connect and reserve once, the starts spread out.
func (c *crowd) all() {
	var wg sync.WaitGroup
	for _, cl := range c.clients {
		wg.Go(func() {
			time.Sleep(rand.N(c.cfg.Spread + 1)) // spread the starts, as real clients'
			cl.reserve(nil)
		})
	}
	wg.Wait()
	c.report("all")
}

// churn restarts and re-reserves every client over and over for d.
func (c *crowd) churn(d time.Duration) {
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i, cl := range c.clients {
		wg.Go(func() {
			for n := 0; time.Now().Before(end); n++ {
				time.Sleep(between(c.cfg.HoldMin, c.cfg.HoldMax)) // hold the reservation
				old := cl.h
				overlap := (i+n)%3 == 0
				if !overlap {
					cl.close()
					time.Sleep(between(c.cfg.PauseMin, c.cfg.PauseMax)) // down
				}
				cl.h = nil
				cl.reserve(old)
				if overlap && old != nil {
					old.Close()
				}
			}
		})
	}
	wg.Wait()
	c.report("churned")
}

func (c *crowd) stop() {
	for _, cl := range c.clients {
		cl.close()
	}
	c.out.Encode(ChurnReport{Event: "stopped", Clients: len(c.clients)})
}

func (c *crowd) report(event string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := ChurnReport{Event: event, Clients: len(c.clients), Cycles: c.cycles, Refused: c.refused,
		Transient: c.transient, Failed: c.failed, Errors: c.errors}
	for _, cl := range c.clients {
		if cl.reserved {
			r.Reserved++
		}
	}
	slices.Sort(c.took)
	if n := len(c.took); n > 0 {
		r.TookP50, r.TookP99, r.TookMax = c.took[n/2], c.took[min(n-1, n*99/100)], c.took[n-1]
	}
	c.out.Encode(r)
	c.cycles, c.refused, c.transient, c.failed, c.errors, c.took = 0, nil, 0, 0, nil, nil
}

func (c *crowd) note(err error, refusal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errors) < 3 {
		c.errors = append(c.errors, err.Error())
	}
	if refusal != "" {
		if c.refused == nil {
			c.refused = map[string]int{}
		}
		c.refused[refusal]++
	}
}

// churnClient is one relay client: an identity and, while it runs, a host.
type churnClient struct {
	*crowd
	key      crypto.PrivKey
	bind     net.IP
	h        host.Host
	reserved bool
}

// reserve starts a new host (old, if not nil, is the previous one, still
// open) and reserves a slot on the relay, with a fresh connection after
// each failure, for up to churnCycleLimit.
func (cl *churnClient) reserve(old host.Host) {
	start := time.Now()
	cl.reserved = false
	for {
		err := cl.try()
		if err == nil {
			cl.mu.Lock()
			cl.cycles++
			cl.took = append(cl.took, time.Since(start))
			cl.mu.Unlock()
			cl.reserved = true
			return
		}
		var re client.ReservationError
		if errors.As(err, &re) && re.Status != pbv2.Status_CONNECTION_FAILED {
			cl.note(err, re.Status.String()) // the relay said no: a refusal
			return
		}
		cl.mu.Lock()
		cl.transient++
		cl.mu.Unlock()
		if time.Since(start) > churnCycleLimit {
			cl.mu.Lock()
			cl.failed++
			cl.mu.Unlock()
			cl.note(err, "")
			return
		}
		cl.note(err, "")
		if cl.h != nil && cl.h != old {
			cl.h.Close()
		}
		cl.h = nil
		time.Sleep(500 * time.Millisecond) // retry pacing
	}
}

// try makes a host if there is none, connects to the relay and reserves.
func (cl *churnClient) try() error {
	if cl.h == nil {
		h, err := cl.newHost()
		if err != nil {
			return err
		}
		cl.h = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.h.Connect(ctx, cl.relay); err != nil {
		return err
	}
	_, err := client.Reserve(ctx, cl.h, cl.relay)
	return err
}

func (cl *churnClient) close() {
	if cl.h != nil {
		cl.h.Close()
		cl.h = nil
	}
	cl.reserved = false
}

// newHost is a minimal go-libp2p host with the client's identity: TCP
// (dialing from its own IP, when it has one), Noise, yamux, no listening,
// no resource limits of its own (the relay's are under test).
func (cl *churnClient) newHost() (host.Host, error) {
	tcpOpts := []any{tcp.DisableReuseport()}
	if cl.bind != nil {
		local := &net.TCPAddr{IP: cl.bind}
		tcpOpts = append(tcpOpts, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) {
			return &net.Dialer{LocalAddr: local}, nil
		}))
	}
	return libp2p.New(
		libp2p.Identity(cl.key),
		libp2p.NoListenAddrs,
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport, tcpOpts...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
	)
}

// between is a random duration in [lo, hi].
func between(lo, hi time.Duration) time.Duration {
	return lo + rand.N(hi-lo+1)
}
