//go:build linux || darwin || freebsd

package files

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// spaceMargin is the free space CheckSpace keeps beyond the need: 64 MiB,
// or 1% of the file system if that is less.
const spaceMargin = 64 << 20

// CheckSpace fails with an error wrapping ErrNoSpace unless the file system
// of dir has room, for an unprivileged user, for need bytes plus a margin.
func CheckSpace(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("files: free space: %w", &fs.PathError{Op: "statfs", Path: dir, Err: err})
	}
	bsize := blockSize(&st)
	free, size := int64(st.Bavail)*bsize, int64(st.Blocks)*bsize
	margin := min(spaceMargin, size/100)
	if need = max(need, 0); need+margin > free {
		return fmt.Errorf("%w: needs %s, %s free on %s", ErrNoSpace, humanBytes(need), humanBytes(free), dir)
	}
	return nil
}
