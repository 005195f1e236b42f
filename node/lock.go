package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the file a running node locks in its home.
const LockFile = "kith.lock"

// ErrHomeInUse is returned when another process runs a node for the home.
var ErrHomeInUse = errors.New("another kith node is running for this home")

// HomeLock is an exclusive advisory lock on a kith home. The kernel releases
// it when the process dies, so a crashed daemon never leaves it stale.
type HomeLock struct{ f *os.File }

// LockHome takes the home's lock without waiting. When another process
// holds it, the error wraps ErrHomeInUse and names that process.
func LockHome(home string) (*HomeLock, error) {
	if err := EnsureHome(home); err != nil {
		return nil, err
	}
	path := filepath.Join(home, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			return nil, fmt.Errorf("%w (home %s, pid %s)", ErrHomeInUse, home, pid)
		}
		return nil, fmt.Errorf("node: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &HomeLock{f: f}, nil
}

// Unlock releases the lock. It is safe to call more than once.
func (l *HomeLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
