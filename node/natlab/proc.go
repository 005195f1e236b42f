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
	r, err := l.TryRun(h, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

// TryRun is Run for goroutines other than the test's: it reports a kith that
// could not be started as an error instead of ending the test.
func (l *Lab) TryRun(h *Host, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := l.kithCmd(ctx, h, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{out.String(), errb.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		return r, fmt.Errorf("natlab: %s: kith %v: %w", h.Name, args, err)
	}
	return r, nil
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

// OutputLine is one line a process printed, and when the lab read it.
type OutputLine struct {
	At   time.Time
	Text string
}

// Proc is a kith command running as a child process in a lab host: a
// daemon or relay (Start), or a command that runs for a while (Spawn: kith
// send, kith transfers --follow). Its standard output is kept line by
// line, each with the time it arrived; its standard error as it came.
type Proc struct {
	Host *Host
	// Verb is "daemon" or "relay" for Start, the command line for Spawn.
	Verb string
	cmd  *exec.Cmd

	mu     sync.Mutex
	stderr bytes.Buffer
	stdout []OutputLine
	next   int           // the first line Line has not returned
	grew   chan struct{} // closed (and replaced) when a line arrives
	done   chan struct{} // closed once the process exited and all it printed is read
	start  time.Time
}

// ReadyTimeout bounds how long Start waits for a daemon to say it is ready.
const ReadyTimeout = 60 * time.Second

// Start starts `kith --home HOME VERB args...` (daemon or relay) inside h's
// namespace and waits until it logs `msg="VERB ready"`. It is stopped when
// the test ends, and its standard error is shown if the test failed.
func (l *Lab) Start(h *Host, verb string, args ...string) *Proc {
	l.t.Helper()
	ready := make(chan struct{})
	var once sync.Once
	p := l.spawn(h, verb, append([]string{verb}, args...), func(line string) {
		if strings.Contains(line, `msg="`+verb+` ready"`) {
			once.Do(func() { close(ready) })
		}
	})
	select {
	case <-ready:
		return p
	case <-p.done:
		l.t.Fatalf("natlab: %s: kith %s exited before it was ready: %v\n%s", h.Name, verb, p.cmd.ProcessState, p.Logs())
	case <-time.After(ReadyTimeout):
		l.t.Fatalf("natlab: %s: kith %s not ready after %v\n%s", h.Name, verb, ReadyTimeout, p.Logs())
	}
	return nil
}

// Spawn starts `kith --home HOME args...` inside h's namespace, a command
// that runs for a while (kith send, kith inbox --follow), and returns at
// once: read its output with Line and Lines, wait for it with Wait. It is
// stopped when the test ends, and its standard error is shown if the test
// failed.
func (l *Lab) Spawn(h *Host, args ...string) *Proc {
	l.t.Helper()
	return l.spawn(h, strings.Join(args, " "), args, nil)
}

// spawn starts kith with args in h's namespace, reading its output, and
// calls onStderr (if set) with each line of its standard error.
func (l *Lab) spawn(h *Host, verb string, args []string, onStderr func(string)) *Proc {
	l.t.Helper()
	cmd := l.kithCmd(context.Background(), h, args...)
	p := &Proc{Host: h, Verb: verb, cmd: cmd, grew: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	stderr, _ := cmd.StderrPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("natlab: %s: start kith %v: %v", h.Name, args, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		scanLines(stderr, func(line string) {
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if onStderr != nil {
				onStderr(line)
			}
		})
	})
	wg.Go(func() {
		scanLines(stdout, func(line string) {
			p.mu.Lock()
			p.stdout = append(p.stdout, OutputLine{time.Now(), line})
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		})
	})
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	return p
}

// scanLines calls f with each line read from r, until it ends.
func scanLines(r io.Reader, f func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f(sc.Text())
	}
}

// Logs is everything the process wrote to standard error so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Lines is every line the process printed on standard output so far,
// each with the time it arrived.
func (p *Proc) Lines() []OutputLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stdout)
}

// Line returns the first line on standard output that Line has not
// returned yet, waiting up to timeout for it to be printed.
func (p *Proc) Line(timeout time.Duration) (OutputLine, error) {
	deadline := time.After(timeout)
	exited := false
	for {
		p.mu.Lock()
		if p.next < len(p.stdout) {
			l := p.stdout[p.next]
			p.next++
			p.mu.Unlock()
			return l, nil
		}
		grew := p.grew
		p.mu.Unlock()
		if exited {
			return OutputLine{}, fmt.Errorf("kith %s in %s exited before printing a line", p.Verb, p.Host.Name)
		}
		select {
		case <-grew:
		case <-p.done:
			exited = true // everything printed is in: look once more
		case <-deadline:
			return OutputLine{}, fmt.Errorf("kith %s in %s printed nothing for %v", p.Verb, p.Host.Name, timeout)
		}
	}
}

// Pid is the process ID of kith itself (ip netns exec execs it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Wait waits up to timeout for the process to exit and returns its exit
// status; ok is false when it was still running.
func (p *Proc) Wait(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	default:
	}
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
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
