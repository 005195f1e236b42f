package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FilesConfig says where received files go and which offers are accepted
// without asking.
type FilesConfig struct {
	// DownloadDir is where accepted offers are received when no folder is
	// given: an absolute path, or one starting with "~/". Default
	// $HOME/Downloads if it exists, else $KITH_HOME/downloads (resolved when
	// used, not when the file is read).
	DownloadDir DirPath `toml:"download_dir"`
	// AutoAccept is "off" (default: every offer waits for accept or reject)
	// or "trusted" (offers from contacts marked trusted are received into
	// DownloadDir at once).
	AutoAccept AutoAccept `toml:"auto_accept"`
}

// AutoAccept values: which offers are accepted without asking.
const (
	AutoAcceptOff     AutoAccept = "off"
	AutoAcceptTrusted AutoAccept = "trusted"
)

// AutoAccept is [files] auto_accept: "off" or "trusted".
type AutoAccept string

func (a AutoAccept) validate() error {
	switch a {
	case "", AutoAcceptOff, AutoAcceptTrusted:
		return nil
	}
	return fmt.Errorf("%q is not one of off, trusted", string(a))
}

// DirPath is a folder written as an absolute path or as "~/...".
type DirPath string

func (d DirPath) validate() error {
	s := string(d)
	if s == "" || s == "~" || strings.HasPrefix(s, "~/") || filepath.IsAbs(s) {
		return nil
	}
	return fmt.Errorf("%q must be an absolute path or start with ~/", s)
}

// Expand returns the path with a leading "~" replaced by the user's home.
func (d DirPath) Expand() (string, error) {
	s := string(d)
	if s != "~" && !strings.HasPrefix(s, "~/") {
		return filepath.Clean(s), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("node: expand %q: %w", s, err)
	}
	return filepath.Join(home, strings.TrimPrefix(s, "~")), nil
}

// DownloadDir resolves [files] download_dir now: the configured folder
// (created if missing), else $HOME/Downloads if it exists, else
// $KITH_HOME/downloads (created).
func (c Config) DownloadDir() (string, error) {
	dir := ""
	if c.Files.DownloadDir != "" {
		d, err := c.Files.DownloadDir.Expand()
		if err != nil {
			return "", err
		}
		dir = d
	} else if home, err := os.UserHomeDir(); err == nil {
		d := filepath.Join(home, "Downloads")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d, nil
		}
	}
	if dir == "" {
		d, err := filepath.Abs(filepath.Join(c.Home, "downloads"))
		if err != nil {
			return "", fmt.Errorf("node: download folder: %w", err)
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("node: download folder: %w", err)
	}
	return dir, nil
}
