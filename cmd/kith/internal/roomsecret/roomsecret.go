// Package roomsecret reads a private room's secret from a file, the one way
// every kith command and the chat UI read it, so that one file gives one
// key everywhere. It never puts a secret in an error. It does not prompt:
// the CLI and the UI each ask without echo in their own way, then Check.
package roomsecret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kithnet/kith/protocols"
)

// ErrNoStdin is returned for "-" where standard input is not there to read
// (in the chat UI, it is the terminal).
var ErrNoStdin = errors.New(`--secret-file -: standard input is the terminal here; name a file`)

// ReadFile reads the secret from path, or from stdin when path is "-". One
// trailing line break (LF or CRLF) is dropped, as editors and echo add it;
// everything else is the secret. The result is checked by Check.
func ReadFile(path string, stdin io.Reader) ([]byte, error) {
	r, name := stdin, "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--secret-file: %w", err)
		}
		defer f.Close()
		r, name = f, path
	} else if stdin == nil {
		return nil, ErrNoStdin
	}
	// Room for the largest secret, a CRLF, and one byte more to tell a
	// secret that is too long.
	b, err := io.ReadAll(io.LimitReader(r, protocols.MaxRoomSecret+3))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("--secret-file: read %s: %w", name, err)
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = bytes.TrimSuffix(b[:n-1], []byte("\r"))
	}
	return Check(b, name)
}

// Check returns b when it is a valid room secret (protocols.MinRoomSecret
// to protocols.MaxRoomSecret bytes), else an error that names where it came
// from and its length, never its content; a refused secret is wiped.
func Check(b []byte, from string) ([]byte, error) {
	switch n := len(b); {
	case n == 0:
		return nil, fmt.Errorf("the secret from %s is empty", from)
	case n < protocols.MinRoomSecret || n > protocols.MaxRoomSecret:
		clear(b)
		return nil, fmt.Errorf("the secret from %s is %d bytes; a room secret is %d to %d",
			from, n, protocols.MinRoomSecret, protocols.MaxRoomSecret)
	}
	return b, nil
}
