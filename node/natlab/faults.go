//go:build natlab

package natlab

// Faults injected into a running lab (RELIABILITY §4.2, F3–F5): iptables
// rules put at the top of a NAT router's chains for a while and lifted
// again, a tc rate limit on a router's public side (so that a transfer is
// still going when the fault hits), and the goroutine dump of a kith
// process. Like the rest of the lab, everything runs inside
// the lab's namespaces (ip netns exec); the host's rules are never touched.

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fault is a set of iptables rules inserted at the top of chains of one
// router, until Lift removes them. Its rules carry a comment naming the
// fault, so that their packet counters can be read.
type Fault struct {
	l     *Lab
	ns    string
	name  string     // the comment on every rule
	What  string     // for logs: "partition of a", ...
	rules [][]string // chain first, then the match and target
	// At is when the first rule was asked for, Lifted when the first was
	// removed (zero until Lift).
	At, Lifted time.Time
	hits       int64 // the rules' packet count when they were lifted
}

// Partition cuts h's router off the public segment: everything in or out of
// its public side is dropped silently, as a cable pulled between the NAT
// and the internet (F3). The host keeps its LAN and its addresses.
func (l *Lab) Partition(h *Host) *Fault {
	l.t.Helper()
	return l.faultRules(h, "partition of "+h.Name,
		[]string{"FORWARD", "-i", "wan0", "-j", "DROP"},
		[]string{"FORWARD", "-o", "wan0", "-j", "DROP"},
		[]string{"INPUT", "-i", "wan0", "-j", "DROP"},
		[]string{"OUTPUT", "-o", "wan0", "-j", "DROP"},
	)
}

// ResetFlow makes h's router answer every TCP packet between h and remote
// (an address on the public segment, e.g. another router's), either way,
// with a TCP reset (F4): connections between them die, and new ones are
// refused. Traffic to other addresses passes.
//
// A reset answers only the packet that met the rule: a side that sends
// nothing afterwards learns nothing (and relies on its deadlines, F5's
// case). To reset both ends, as ss -K did, packets from remote are answered
// first; once one was, so that remote's end has been told, packets from h
// are answered too. For a transfer from h, the receiver acknowledges data
// all the time, so it is told at once; h at its next packet.
func (l *Lab) ResetFlow(h *Host, remote string) *Fault {
	l.t.Helper()
	return l.resetRules(h, remote, remote, fmt.Sprintf("tcp reset between %s and %s", h.Name, remote))
}

// ResetAll is ResetFlow for every TCP packet in or out of h's router, to
// and from anywhere; first is told first, as remote is by ResetFlow.
func (l *Lab) ResetAll(h *Host, first string) *Fault {
	l.t.Helper()
	return l.resetRules(h, first, "0.0.0.0/0", fmt.Sprintf("tcp reset of everything of %s (%s told first)", h.Name, first))
}

func (l *Lab) resetRules(h *Host, first, scope, what string) *Fault {
	l.t.Helper()
	rule := func(src, dst string) []string {
		return []string{"FORWARD", "-p", "tcp", "-s", src, "-d", dst, "-j", "REJECT", "--reject-with", "tcp-reset"}
	}
	f := l.faultRules(h, what, rule(first, h.Addr))
	if _, ok := waitFor(5*time.Second, 5*time.Millisecond, func() bool { return f.Packets() > 0 }); !ok {
		l.t.Logf("natlab: %s: nothing came from %s for 5 s; resetting %s's packets anyway", what, first, h.Name)
	}
	if scope != first {
		l.addFaultRules(f, rule(scope, h.Addr))
	}
	l.addFaultRules(f, rule(h.Addr, scope))
	return f
}

// BlackholeFlow makes h's router drop every packet between h and remote,
// either way, without a word (F5): TCP and QUIC alike see only silence.
// Traffic to other addresses passes.
func (l *Lab) BlackholeFlow(h *Host, remote string) *Fault {
	l.t.Helper()
	return l.faultRules(h, fmt.Sprintf("blackhole between %s and %s", h.Name, remote),
		[]string{"FORWARD", "-s", h.Addr, "-d", remote, "-j", "DROP"},
		[]string{"FORWARD", "-s", remote, "-d", h.Addr, "-j", "DROP"},
	)
}

// faultRules inserts rules at the top of their chains in h's router; the test
// ends if it cannot. They are removed at the latest with the namespace.
func (l *Lab) faultRules(h *Host, what string, rules ...[]string) *Fault {
	l.t.Helper()
	if h.Router == "" {
		l.t.Fatalf("natlab: %s: %s has no router to put the rules in", what, h.Name)
	}
	// At is taken before the first rule goes in: it is in force as soon as
	// iptables has put it there, before the command returns (tens of ms
	// later on a loaded machine), and what it causes must not seem to come
	// before it.
	f := &Fault{l: l, ns: h.Router, name: "kithfault-" + randHex(4), What: what, At: time.Now()}
	l.addFaultRules(f, rules...)
	l.t.Logf("natlab: %s: in place at %s", what, time.Now().Format("15:04:05.000"))
	return f
}

// addFaultRules inserts more rules into f.
func (l *Lab) addFaultRules(f *Fault, rules ...[]string) {
	l.t.Helper()
	for _, r := range rules {
		rule := append([]string{r[0]}, withComment(r[1:], f.name)...)
		if err := l.nsExec(f.ns, "iptables", append([]string{"-I", rule[0], "1"}, rule[1:]...)...); err != nil {
			f.Lift()
			l.t.Fatalf("natlab: %s: %v", f.What, err)
		}
		f.rules = append(f.rules, rule)
	}
}

// withComment puts a comment match before the "-j TARGET ..." part of a
// rule.
func withComment(spec []string, comment string) []string {
	i := len(spec)
	for k, a := range spec {
		if a == "-j" {
			i = k
			break
		}
	}
	out := append(append([]string(nil), spec[:i]...), "-m", "comment", "--comment", comment)
	return append(out, spec[i:]...)
}

// Lift removes the fault's rules (each once; calling it again does
// nothing). The lab's teardown removes them anyway.
func (f *Fault) Lift() {
	if f.rules == nil {
		return
	}
	f.hits = f.Packets()
	f.Lifted = time.Now()
	for _, r := range f.rules {
		if err := f.l.nsExec(f.ns, "iptables", append([]string{"-D", r[0]}, r[1:]...)...); err != nil {
			f.l.t.Errorf("natlab: lifting %s: %v", f.What, err)
		}
	}
	f.rules = nil
	f.l.t.Logf("natlab: %s: lifted at %s, after %v", f.What, f.Lifted.Format("15:04:05.000"), f.Lifted.Sub(f.At).Round(time.Millisecond))
}

// Packets is how many packets the fault's rules have matched so far (until
// lifted): the proof that it hit the traffic it was meant for.
func (f *Fault) Packets() int64 {
	if f.rules == nil {
		return f.hits
	}
	var n int64
	seen := map[string]bool{}
	for _, r := range f.rules {
		if seen[r[0]] {
			continue
		}
		seen[r[0]] = true
		out, err := f.l.nsOutput(f.ns, "iptables", "-L", r[0], "-v", "-n", "-x")
		if err != nil {
			f.l.t.Errorf("natlab: counters of %s: %v", f.What, err)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, "/* "+f.name+" */") {
				continue
			}
			if fields := strings.Fields(line); len(fields) > 0 {
				v, _ := strconv.ParseInt(fields[0], 10, 64)
				n += v
			}
		}
	}
	return n
}

// LimitUplink caps what h's router sends to the public segment (h's
// uploads) at rate (tc syntax: "16mbit") with a token bucket, so that a
// transfer from h lasts long enough for a fault to hit it mid-stream.
func (l *Lab) LimitUplink(h *Host, rate string) {
	l.t.Helper()
	if h.Router == "" {
		l.t.Fatalf("natlab: %s has no router to shape", h.Name)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		l.t.Skip("natlab: needs tc (apt-get install iproute2)")
	}
	if err := l.nsExec(h.Router, "tc", "qdisc", "add", "dev", "wan0", "root", "tbf",
		"rate", rate, "burst", "32kbit", "latency", "100ms"); err != nil {
		l.t.Fatalf("natlab: limiting %s's uplink to %s: %v", h.Name, rate, err)
	}
}

// Goroutines ends p with SIGQUIT, which makes the Go runtime print every
// goroutine's stack, and returns that dump: what was still running in the
// process at the end (the daemon's equivalent of goleak). p is gone after.
func (p *Proc) Goroutines() (string, error) {
	if err := p.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		return "", err
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return "", fmt.Errorf("kith %s in %s did not exit on SIGQUIT", p.Verb, p.Host.Name)
	}
	logs := p.Logs()
	i := strings.Index(logs, "SIGQUIT: quit")
	if i < 0 {
		return "", fmt.Errorf("kith %s in %s printed no goroutine dump on SIGQUIT", p.Verb, p.Host.Name)
	}
	return logs[i:], nil
}

// goroutineHeader starts each goroutine of a dump.
var goroutineHeader = regexp.MustCompile(`(?m)^goroutine [0-9]+ `)

// GoroutinesIn splits a dump into goroutines and returns those whose stack
// has a frame of any of funcs (e.g. "files.(*pump)"), and the total count.
func GoroutinesIn(dump string, funcs ...string) (matched []string, total int) {
	idx := goroutineHeader.FindAllStringIndex(dump, -1)
	for k, at := range idx {
		end := len(dump)
		if k+1 < len(idx) {
			end = idx[k+1][0]
		}
		g := dump[at[0]:end]
		total++
		for _, f := range funcs {
			if strings.Contains(g, f) {
				matched = append(matched, strings.TrimSpace(g))
				break
			}
		}
	}
	return matched, total
}
