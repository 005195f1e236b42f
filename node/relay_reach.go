package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2/pb"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	gproto "google.golang.org/protobuf/proto"
)

// A relay's own reachability check.
//
// go-libp2p's AutoNAT v2 confirms each address a few times and then checks
// it again once an hour: a relay behind a port-forward that is taken off
// its router goes on relaying, as far as it knows, for up to an hour, and
// its clients keep a reservation nobody can use (seen in node/natlab,
// RELIABILITY F13). So every relay.reachability_check (15 s) a relay asks
// up to reachCheckServers connected colleagues (allowed peers: a stranger
// could lie to make it stop) to dial each of its public addresses back,
// with AutoNAT v2 dial requests (every kith node serves them), and serves
// while any address is reachable. The requests are spread over every
// colleague connected, at most reachChecksPerServer to one in a round.
//
// The request is AutoNAT v2's own; the dial-back arrives at go-libp2p's
// AutoNAT client, which does not know our nonce and resets it. The
// colleague's answer (it could dial, or not) is what we read: a colleague
// is trusted not to lie about it.
//
// A colleague with a QUIC session to the relay dials a QUIC address back
// from that session's UDP socket, through the NAT state the session keeps
// alive on the relay's router even after its port-forward is gone (seen in
// node/natlab): its "I could" about a QUIC address does not count, and such
// an address takes the verdict of the TCP address on the same IP and port.

// reachCheckServers is how many colleagues each round asks; an address is
// unreachable only when that many (or every colleague there is, if fewer)
// could not dial it, and none could.
const reachCheckServers = 2

// reachAnswerTimeout bounds one dial request: the server dials for up to
// 10 s, then writes on the dial-back stream for up to 5 s.
const reachAnswerTimeout = 30 * time.Second

// maxDialData is the most dial data (sent when the server dials an IP other
// than the one it sees us on) we send for one request: AutoNAT v2's own cap.
const maxDialData = 100_000

// reachChecker runs the rounds of a relay's reachability check.
type reachChecker struct {
	h       host.Host
	allowed func(peer.ID) bool
	log     *slog.Logger
}

// round asks up to reachCheckServers colleagues to dial each public address
// back and returns a verdict (true: reachable) for each address it learnt
// something about; addrs are the addresses asked about.
func (c *reachChecker) round(ctx context.Context) (verdict map[string]bool, addrs []string) {
	targets := publicAddrs(c.h.Addrs())
	for _, a := range targets {
		addrs = append(addrs, a.String())
	}
	servers := c.servers()
	if len(targets) == 0 || len(servers) == 0 {
		return nil, addrs
	}
	work, asked := planChecks(len(targets), servers)
	answers := make([][]network.Reachability, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s, todo := range work {
		overQUIC := hasQUICConn(c.h, s)
		wg.Go(func() {
			// One request at a time per server: it takes at most two at once.
			for _, i := range todo {
				a := targets[i]
				r, err := askDialBack(ctx, c.h, s, a)
				if err != nil {
					c.log.Debug("reachability check: no answer", "server", s, "addr", a, "err", err)
					continue
				}
				// A colleague connected to us over QUIC dials a QUIC address
				// back from the same UDP socket: its packets follow the NAT
				// state of the session it has, which outlives a removed
				// port-forward, so "it could" says nothing about others.
				unverifiable := r == network.ReachabilityPublic && overQUIC && isQUIC(a)
				c.log.Debug("reachability check: answer", "server", s, "addr", a,
					"reachability", reachabilityName(r), "unverifiable", unverifiable)
				if unverifiable {
					continue
				}
				mu.Lock()
				answers[i] = append(answers[i], r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	verdict = make(map[string]bool)
	for i, a := range targets {
		if v, ok := reachVerdict(answers[i], asked[i]); ok {
			verdict[a.String()] = v
		}
	}
	mirrorTCP(verdict, targets)
	return verdict, addrs
}

// reachChecksPerServer is how many addresses one colleague is asked about
// in a round: an AutoNAT v2 server answers 12 requests a minute from one
// peer, 3 every 15 s (the default interval), and go-libp2p's own checks
// need some too.
const reachChecksPerServer = 3

// planChecks assigns each of n addresses up to reachCheckServers of the
// servers (shuffled by the caller): every address one server before any
// gets a second, the servers taken in turn so that the load spreads, and
// none given more than reachChecksPerServer. It returns each server's
// addresses (indexes) and how many servers each address got.
func planChecks(n int, servers []peer.ID) (work map[peer.ID][]int, asked []int) {
	work = make(map[peer.ID][]int)
	asked = make([]int, n)
	next := 0
	for pass := 1; pass <= reachCheckServers; pass++ {
		for i := range n {
			for tries := 0; tries < len(servers) && asked[i] < pass; tries++ {
				s := servers[next%len(servers)]
				next++
				if len(work[s]) >= reachChecksPerServer || slices.Contains(work[s], i) {
					continue
				}
				work[s] = append(work[s], i)
				asked[i]++
			}
		}
	}
	return work, asked
}

// mirrorTCP gives a QUIC address that got no verdict the verdict of the TCP
// address on the same IP and port, if that one got one: a port-forward (or
// a firewall rule) is set up for a port, TCP and UDP alike, and over TCP a
// colleague's dial-back is a new connection whatever it already has with us.
func mirrorTCP(verdict map[string]bool, targets []ma.Multiaddr) {
	for _, a := range targets {
		if !isQUIC(a) {
			continue
		}
		if _, ok := verdict[a.String()]; ok {
			continue
		}
		ip, _ := manet.ToIP(a)
		port, err := a.ValueForProtocol(ma.P_UDP)
		if err != nil || ip == nil {
			continue
		}
		for _, b := range targets {
			tip, _ := manet.ToIP(b)
			tport, err := b.ValueForProtocol(ma.P_TCP)
			if err != nil || tip == nil || !tip.Equal(ip) || tport != port {
				continue
			}
			if v, ok := verdict[b.String()]; ok {
				verdict[a.String()] = v
			}
		}
	}
}

// isQUIC reports whether a is a QUIC address.
func isQUIC(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_QUIC_V1)
	return err == nil
}

// hasQUICConn reports whether h is connected to p over QUIC.
func hasQUICConn(h host.Host, p peer.ID) bool {
	return slices.ContainsFunc(h.Network().ConnsToPeer(p), func(c network.Conn) bool {
		return isQUIC(c.RemoteMultiaddr())
	})
}

// reachVerdict combines the answers about one address from asked servers:
// reachable if any could dial it; unreachable if none could and at least
// min(reachCheckServers, asked) said so; otherwise nothing is known.
func reachVerdict(answers []network.Reachability, asked int) (reachable, known bool) {
	failed := 0
	for _, r := range answers {
		switch r {
		case network.ReachabilityPublic:
			return true, true
		case network.ReachabilityPrivate:
			failed++
		}
	}
	return false, failed > 0 && failed >= min(reachCheckServers, asked)
}

// servers lists the connected colleagues that serve AutoNAT v2, shuffled.
func (c *reachChecker) servers() []peer.ID {
	var out []peer.ID
	for _, p := range c.h.Network().Peers() {
		if !c.allowed(p) || c.h.Network().Connectedness(p) != network.Connected {
			continue
		}
		if ps, err := c.h.Peerstore().SupportsProtocols(p, autonatv2.DialProtocol); err != nil || len(ps) == 0 {
			continue
		}
		out = append(out, p)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// publicAddrs are the addresses of addrs others could dial from the
// internet over TCP or QUIC (what an AutoNAT v2 server dials): public IP
// addresses, not relayed ones.
func publicAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if isCircuit(a) || !manet.IsPublicAddr(a) {
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err != nil {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// errNoDialStatus is an answer that says nothing about the address: the
// server refused or could not try.
var errNoDialStatus = errors.New("node: the server did not try to dial")

// askDialBack asks server p (AutoNAT v2) to dial addr and returns what it
// says: public (it could), private (it could not), or an error when it did
// not try.
func askDialBack(ctx context.Context, h host.Host, p peer.ID, addr ma.Multiaddr) (network.Reachability, error) {
	ctx, cancel := context.WithTimeout(ctx, reachAnswerTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, autonatv2.DialProtocol)
	if err != nil {
		return 0, err
	}
	if err := s.Scope().SetService(autonatv2.ServiceName); err != nil {
		s.Reset()
		return 0, err
	}
	s.SetDeadline(time.Now().Add(reachAnswerTimeout))
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() }) // the node stops: stop waiting
	defer stop()
	br := bufio.NewReader(s)
	msg := pb.Message{Msg: &pb.Message_DialRequest{DialRequest: &pb.DialRequest{
		Addrs: [][]byte{addr.Bytes()}, Nonce: rand.Uint64(),
	}}}
	if err := writeDelimited(s, &msg); err != nil {
		s.Reset()
		return 0, err
	}
	if err := readDelimited(br, &msg); err != nil {
		s.Reset()
		return 0, err
	}
	if dd := msg.GetDialDataRequest(); dd != nil {
		if err := sendDialData(s, dd.GetNumBytes()); err != nil {
			s.Reset()
			return 0, err
		}
		if err := readDelimited(br, &msg); err != nil {
			s.Reset()
			return 0, err
		}
	}
	resp := msg.GetDialResponse()
	if resp == nil {
		s.Reset()
		return 0, fmt.Errorf("node: AutoNAT v2 answer %T, want a dial response", msg.Msg)
	}
	if resp.GetStatus() != pb.DialResponse_OK {
		return 0, fmt.Errorf("%w: %v", errNoDialStatus, resp.GetStatus())
	}
	switch resp.GetDialStatus() {
	case pb.DialStatus_OK, pb.DialStatus_E_DIAL_BACK_ERROR:
		// E_DIAL_BACK_ERROR: it connected; only the dial-back stream failed.
		return network.ReachabilityPublic, nil
	case pb.DialStatus_E_DIAL_ERROR:
		return network.ReachabilityPrivate, nil
	}
	return 0, fmt.Errorf("%w: dial status %v", errNoDialStatus, resp.GetDialStatus())
}

// sendDialData sends the n bytes of dial data a server asked for.
func sendDialData(w io.Writer, n uint64) error {
	if n > maxDialData {
		return fmt.Errorf("node: AutoNAT v2 server asks for %d bytes of dial data", n)
	}
	chunk := make([]byte, 4000)
	for left := int(n); left > 0; left -= len(chunk) {
		data := chunk[:min(left, len(chunk))]
		m := pb.Message{Msg: &pb.Message_DialDataResponse{DialDataResponse: &pb.DialDataResponse{Data: data}}}
		if err := writeDelimited(w, &m); err != nil {
			return err
		}
	}
	return nil
}

// maxAutoNATMessage is AutoNAT v2's own cap on a message.
const maxAutoNATMessage = 8192

// writeDelimited writes m with a varint length prefix, as AutoNAT v2 frames
// its messages.
func writeDelimited(w io.Writer, m gproto.Message) error {
	b, err := gproto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

// readDelimited reads one varint-length-prefixed message of at most
// maxAutoNATMessage bytes into m.
func readDelimited(br *bufio.Reader, m gproto.Message) error {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return err
	}
	if n > maxAutoNATMessage {
		return fmt.Errorf("node: AutoNAT v2 message of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	return gproto.Unmarshal(body, m)
}

// reachState is what a relay knows of each of its public addresses:
// reachable (true) or not, from AutoNAT v2's events and its own checks,
// whichever spoke last.
type reachState map[string]bool

// applyEvent records what changed between two AutoNAT v2 events: the
// tracker restates its whole belief in each event, and a belief it has not
// revised since is older than our own checks.
func (s reachState) applyEvent(prev, e []ma.Multiaddr, reachable bool) {
	for _, a := range e {
		if !slices.ContainsFunc(prev, a.Equal) {
			s[a.String()] = reachable
		}
	}
}

// applyCheck records a round's verdicts and forgets addresses the relay no
// longer has.
func (s reachState) applyCheck(verdict map[string]bool, addrs []string) (changed []string) {
	for a := range s {
		if !slices.Contains(addrs, a) {
			delete(s, a)
		}
	}
	for a, v := range verdict {
		if old, ok := s[a]; !ok || old != v {
			changed = append(changed, a)
		}
		s[a] = v
	}
	slices.Sort(changed)
	return changed
}

// split lists the reachable and unreachable addresses.
func (s reachState) split() (reachable, unreachable []string) {
	for a, v := range s {
		if v {
			reachable = append(reachable, a)
		} else {
			unreachable = append(unreachable, a)
		}
	}
	slices.Sort(reachable)
	slices.Sort(unreachable)
	return reachable, unreachable
}
