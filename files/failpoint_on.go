//go:build failpoint

package files

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

var fp struct {
	once sync.Once
	name string
	at   int64
	hits atomic.Int64
}

// failpoint crashes the process if it is the one $KITH_FAILPOINT names and
// this is the hit it names.
func failpoint(name string) {
	fp.once.Do(func() {
		v := os.Getenv(FailpointEnv)
		n, at, ok := strings.Cut(v, ":")
		fp.name, fp.at = n, 1
		if k, err := strconv.ParseInt(at, 10, 64); ok && err == nil && k > 0 {
			fp.at = k
		}
	})
	if name != fp.name || fp.hits.Add(1) != fp.at {
		return
	}
	os.Stderr.WriteString("kith: failpoint " + name + ": crashing\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is never handled: nothing after this runs
}
