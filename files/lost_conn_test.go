package files

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/kithnet/kith/protocols/invariants"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// cutProxy forwards TCP connections on loopback to a target until cut.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pairs  [][2]*net.TCPConn // accepted (towards the dialler), dialled (towards the target)
	wg     sync.WaitGroup
	gate   sync.RWMutex  // held by freeze: nothing is forwarded
	held   chan struct{} // a signal when bytes arrive while frozen
}

func startCutProxy(t *testing.T, target ma.Multiaddr) *cutProxy {
	t.Helper()
	addr, err := manet.ToNetAddr(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: addr.String(), held: make(chan struct{}, 1)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *cutProxy) addr(t *testing.T) ma.Multiaddr {
	a, err := manet.FromNetAddr(p.ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		pair := [2]*net.TCPConn{in.(*net.TCPConn), out.(*net.TCPConn)}
		p.mu.Lock()
		p.pairs = append(p.pairs, pair)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pair[1], pair[0])
		go p.pipe(pair[0], pair[1])
	}
}

// pipe copies src to dst until src ends, then reads src to its end (so
// that closing it sends no reset) and closes it.
func (p *cutProxy) pipe(dst, src *net.TCPConn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate.TryRLock() {
				select {
				case p.held <- struct{}{}:
				default:
				}
				p.gate.RLock()
			}
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	io.Copy(io.Discard, src)
	src.Close()
}

// freeze stops forwarding, leaving the connections open: a silent path,
// as a blackhole makes it, until thaw.
func (p *cutProxy) freeze() { p.gate.Lock() }

func (p *cutProxy) thaw() { p.gate.Unlock() }

// cut refuses new connections and ends the forwarded ones as a killed
// process's kernel would end them: the target's side gets a FIN (no
// goodbye from its peer's muxer), the dialler's side is closed. The
// target's side is closed once the target closes it.
func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		pair[0].Close()
		pair[1].CloseWrite()
	}
	p.pairs = nil
}

// A sender whose connection ends without a goodbye (its process killed,
// its kernel closing the TCP connection with a FIN) pauses the transfer,
// which resumes when the sender is back: yamux reports the stream's end as
// a reset that wraps io.EOF, and the receiver took that for the sender
// ending the stream early, or for a malformed chunk, and failed the
// transfer for good (cmd/kith TestF1Kill9Resume/sender/50% in CI).
func TestSenderConnectionLostPausesThenResumes(t *testing.T) {
	a, b := newNode(t, resumeConfig()), newNode(t, resumeConfig())
	// a reaches b only through the proxy, and b does not know a's
	// addresses until identify tells it over that connection.
	proxy := startCutProxy(t, b.h.Addrs()[0])
	a.h.Peerstore().AddAddrs(b.h.ID(), []ma.Multiaddr{proxy.addr(t)}, peerstore.PermanentAddrTTL)
	src, want, out, in, dir := startBig(t, a, b)
	proxy.cut()
	paused := b.waitState(t, in.ID, StatePaused, StateFailed, StateDone)
	if paused.State != StatePaused {
		t.Fatalf("after the connection was cut the transfer is %s (%q); want paused", paused.State, paused.Error)
	}
	assertNoFinal(t, dir)
	sums := sentSums(t, src)
	invariants.CheckFinals(t, dir, sums) // N2

	know(a, b)
	waitBigDone(t, a, b, out, in, src, dir, want, sums)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.events {
		if e.Transfer.ID == in.ID && e.Transfer.State == StateFailed {
			t.Errorf("the transfer failed on the way (%q)", e.Transfer.Error)
		}
	}
}
