package files

import (
	"io/fs"
	"os"
)

// renameIfFree renames from to to in root unless to exists (checked first,
// so a short race remains).
func renameIfFree(root *os.Root, from, to string) error {
	if _, err := root.Lstat(to); err == nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
	}
	return root.Rename(from, to)
}
