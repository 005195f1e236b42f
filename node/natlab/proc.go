//go:build natlab

package natlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kithnet/kith/node"
)

// Result is a finished kith command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// RunTimeout bounds every kith command Run runs.
const RunTimeout = 60 * time.Second

// Run runs `kith --home HOME args...` inside h's namespace to completion.
func (l *Lab) Run(h *Host, args ...string) Result {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := l.kithCmd(ctx, h, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("natlab: %s: kith %v: %v", h.Name, args, err)
	}
	return Result{out.String(), errb.String(), code}
}

// MustRun is Run that fails the test unless kith exits 0, and returns its
// standard output.
func (l *Lab) MustRun(h *Host, args ...string) string {
	l.t.Helper()
	r := l.Run(h, args...)
	if r.Code != 0 {
		l.t.Fatalf("natlab: %s: kith %v: exit %d\nstdout: %s\nstderr: %s", h.Name, args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Status is h's `kith status --json`, or false when its daemon did not answer.
func (l *Lab) Status(h *Host) (node.Status, bool) {
	var st node.Status
	r := l.Run(h, "status", "--json")
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		return st, false
	}
	return st, true
}

// ID is h's peer ID (kith id).
func (l *Lab) ID(h *Host) string {
	l.t.Helper()
	var id node.Identity
	out := l.MustRun(h, "id", "--json")
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		l.t.Fatalf("natlab: %s: kith id: %v\n%s", h.Name, err, out)
	}
	return id.PeerID
}

func (l *Lab) kithCmd(ctx context.Context, h *Host, args ...string) *exec.Cmd {
	all := append([]string{"netns", "exec", h.NS, l.kith, "--home", h.Home}, args...)
	cmd := exec.CommandContext(ctx, "ip", all...)
	// ip netns exec execs kith in place: the child is kith itself. It dies
	// with the test process, so a crashed test leaves no kith behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Proc is a kith daemon or relay running as a child process in a lab host.
type Proc struct {
	Host *Host
	Verb string
	cmd  *exec.Cmd

	mu     sync.Mutex
	stderr bytes.Buffer
	stdout []string
	lines  chan string
	done   chan struct{}
	start  time.Time
}

// ReadyTimeout bounds how long Start waits for a daemon to say it is ready.
const ReadyTimeout = 60 * time.Second

// Start starts `kith --home HOME VERB args...` (daemon or relay) inside h's
// namespace and waits until it logs `msg="VERB ready"`. It is stopped when
// the test ends, and its standard error is shown if the test failed.
func (l *Lab) Start(h *Host, verb string, args ...string) *Proc {
	l.t.Helper()
	cmd := l.kithCmd(context.Background(), h, append([]string{verb}, args...)...)
	p := &Proc{Host: h, Verb: verb, cmd: cmd, lines: make(chan string, 64), done: make(chan struct{}), start: time.Now()}
	stderr, _ := cmd.StderrPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("natlab: %s: start kith %s: %v", h.Name, verb, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	ready := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Go(func() {
		p.scan(stderr, func(line string) {
			p.stderr.WriteString(line + "\n")
			if strings.Contains(line, `msg="`+verb+` ready"`) {
				once.Do(func() { close(ready) })
			}
		})
	})
	wg.Go(func() {
		p.scan(stdout, func(line string) {
			p.stdout = append(p.stdout, line)
			select {
			case p.lines <- line:
			default: // nobody reads that far
			}
		})
	})
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	select {
	case <-ready:
		return p
	case <-p.done:
		l.t.Fatalf("natlab: %s: kith %s exited before it was ready: %v\n%s", h.Name, verb, cmd.ProcessState, p.Logs())
	case <-time.After(ReadyTimeout):
		l.t.Fatalf("natlab: %s: kith %s not ready after %v\n%s", h.Name, verb, ReadyTimeout, p.Logs())
	}
	return nil
}

func (p *Proc) scan(r io.Reader, f func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		f(sc.Text())
		p.mu.Unlock()
	}
}

// Logs is everything the process wrote to standard error so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Stdout is every line the process printed on standard output so far.
func (p *Proc) Stdout() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stdout...)
}

// Line returns the process's next line on standard output, waiting up to
// timeout.
func (p *Proc) Line(timeout time.Duration) (string, error) {
	select {
	case l := <-p.lines:
		return l, nil
	case <-p.done:
		select {
		case l := <-p.lines:
			return l, nil
		default:
		}
		return "", fmt.Errorf("kith %s in %s exited before printing a line", p.Verb, p.Host.Name)
	case <-time.After(timeout):
		return "", fmt.Errorf("kith %s in %s printed nothing for %v", p.Verb, p.Host.Name, timeout)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Stop ends the process with SIGTERM and waits for it, killing it if it
// takes more than 10 s. It reports whether it stopped on SIGTERM.
func (p *Proc) Stop() bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(10 * time.Second):
		p.Kill()
		return false
	}
}

// stopAll stops every process of the lab and, if the test failed, shows
// what each wrote to standard error and the routers' counters.
func (l *Lab) stopAll() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			if !p.Stop() {
				l.t.Errorf("natlab: %s: kith %s ignored SIGTERM", p.Host.Name, p.Verb)
			}
		})
	}
	wg.Wait()
	if l.t.Failed() {
		l.report()
	}
}

// Dump logs what every process of the lab wrote to standard error and the
// routers' counters, for a failure that does not fail the test (a round of
// a measured scenario).
func (l *Lab) Dump(why string) {
	l.t.Helper()
	l.t.Logf("natlab: %s; the lab's state follows", why)
	l.report()
}

func (l *Lab) report() {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.mu.Unlock()
	for _, p := range procs {
		state := "running"
		select {
		case <-p.done:
			state = p.cmd.ProcessState.String()
		default:
		}
		l.t.Logf("natlab: --- stderr of kith %s in %s (started %s, %s):\n%s",
			p.Verb, p.Host.Name, p.start.Format("15:04:05.000"), state, p.Logs())
	}
	l.t.Logf("natlab: --- routers:\n%s", l.routerReport())
}
