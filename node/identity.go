package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
)

// IdentityFile is the name of the Ed25519 key file inside a kith home.
const IdentityFile = "identity.key"

// ErrKeyPermissions is returned when the key file can be read by others.
var ErrKeyPermissions = errors.New("identity key is readable by group or others")

// EnsureHome creates the home directory (0700) when it is missing.
func EnsureHome(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("node: create home %q: %w", home, err)
	}
	return nil
}

// LoadIdentity reads the node's Ed25519 key from home, creating it (mode
// 0600) on first use. created reports whether a new key was made. A key file
// readable by group or others is refused with a message saying how to fix it.
func LoadIdentity(home string) (key crypto.PrivKey, created bool, err error) {
	path := filepath.Join(home, IdentityFile)
	key, err = readIdentity(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := EnsureHome(home); err != nil {
		return nil, false, err
	}
	key, _, err = crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, false, fmt.Errorf("node: generate identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("node: encode identity: %w", err)
	}
	// O_EXCL: never overwrite a key another process wrote meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = readIdentity(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("node: create identity: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("node: write identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("node: write identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("node: write identity: %w", err)
	}
	return key, true, nil
}

func readIdentity(path string) (crypto.PrivKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("node: %s has mode %04o: %w; fix it with: chmod 600 %s",
			path, perm, ErrKeyPermissions, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	key, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node: identity %s is corrupt: %w", path, err)
	}
	if key.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("node: identity %s is a %s key; kith uses Ed25519 only", path, key.Type())
	}
	return key, nil
}
