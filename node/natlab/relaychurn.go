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
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
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
