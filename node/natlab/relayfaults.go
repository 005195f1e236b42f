//go:build natlab

package natlab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Faults of the relay (RELIABILITY F2, F13, L3): a port-forward removed
// from a relay's router, more public addresses for one host, and this test
// binary run inside a namespace in a helper mode (the crowd of relay
// clients of relaychurn.go).

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
		scanLines(out, func(line string) { hp.lines <- line })
	})
	wg.Go(func() {
		scanLines(errR, func(line string) {
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
