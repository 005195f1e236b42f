package invariants

import (
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"
)

// settle bounds how long NoLeaks and ScopesIdle wait for goroutines,
// descriptors and scopes to wind down after the code under test closed.
const settle = 10 * time.Second

// NoLeaks records the goroutines and the count of open file descriptors
// now, and at the end of the test (after every cleanup registered later,
// so call it first) fails t if goroutines started since are still running
// or more descriptors are open (N7). opts are goleak's, for goroutines the
// test does not own (a library's that outlive a Close by design).
func NoLeaks(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	opts = append([]goleak.Option{goleak.IgnoreCurrent()}, opts...)
	fds := OpenFDs(t)
	t.Cleanup(func() {
		if t.Failed() {
			return // a failed test may leave anything behind
		}
		if err := goleak.Find(opts...); err != nil {
			t.Errorf("invariants: N7: goroutines leaked: %v", err)
		}
		n := OpenFDs(t)
		for deadline := time.Now().Add(settle); n > fds && time.Now().Before(deadline); n = OpenFDs(t) {
			time.Sleep(20 * time.Millisecond) // descriptors close asynchronously (finalizers, netpoll)
		}
		if n > fds {
			t.Errorf("invariants: N7: %d file descriptors open, %d when the test began", n, fds)
		}
	})
}

// OpenFDs counts the process's open file descriptors (Linux: /proc/self/fd;
// elsewhere it skips the test).
func OpenFDs(t testing.TB) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("invariants: cannot count open files here: %v", err)
	}
	return len(des) - 1 // the descriptor ReadDir itself had open
}

// ScopesIdle fails t unless, within a few seconds, rm's service scopes
// named (and, if system, its system scope) hold no streams, connections,
// descriptors or memory (N7). Call it once the code under test has closed
// its streams (services) or its host (system).
func ScopesIdle(t testing.TB, rm network.ResourceManager, system bool, services ...string) {
	t.Helper()
	busy := func(s network.ScopeStat) bool {
		return s.NumStreamsInbound+s.NumStreamsOutbound+s.NumConnsInbound+s.NumConnsOutbound+s.NumFD > 0 || s.Memory > 0
	}
	var last map[string]network.ScopeStat
	for deadline := time.Now().Add(settle); ; {
		last = map[string]network.ScopeStat{}
		for _, name := range services {
			rm.ViewService(name, func(s network.ServiceScope) error {
				if st := s.Stat(); busy(st) {
					last["service "+name] = st
				}
				return nil
			})
		}
		if system {
			rm.ViewSystem(func(s network.ResourceScope) error {
				if st := s.Stat(); busy(st) {
					last["system"] = st
				}
				return nil
			})
		}
		if len(last) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // streams are released when their handlers return
	}
	for name, st := range last {
		t.Errorf("invariants: N7: resource manager %s scope not back to zero: %+v", name, st)
	}
}
