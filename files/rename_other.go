//go:build !linux

package files

import "os"

// renameNoReplace renames from to to in root unless to exists (checked
// first: a short race remains where renameat2 is missing).
func renameNoReplace(root *os.Root, from, to string) error {
	return renameIfFree(root, from, to)
}
