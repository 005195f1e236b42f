package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to, two names directly in root, failing
// with an error wrapping fs.ErrExist if to exists. It uses renameat2
// RENAME_NOREPLACE on a descriptor of root's own folder (the names have no
// "/", so they cannot leave it); where the file system lacks it, it checks
// first, which leaves a short race.
func renameNoReplace(root *os.Root, from, to string) error {
	if strings.Contains(from, "/") || strings.Contains(to, "/") {
		return fmt.Errorf("files: rename %q to %q: not names in the folder", from, to)
	}
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	err = unix.Renameat2(int(d.Fd()), from, int(d.Fd()), to, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		return renameIfFree(root, from, to)
	case errors.Is(err, unix.EEXIST):
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}
