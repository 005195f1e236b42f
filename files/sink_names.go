package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kithnet/kith/protocols"
	"golang.org/x/text/unicode/norm"
)

// PartialSuffix ends the name of a top-level item while it is received:
// NAME.kith-partial is a file, or a folder holding the item's entries. No
// offered name may end with it (protocols.CheckName).
const PartialSuffix = protocols.PartialSuffix

// maxFinalName is the longest final name PlanNames chooses: NAME plus
// PartialSuffix must still fit in a file name (protocols.MaxNameBytes, 255
// bytes on common file systems).
const maxFinalName = protocols.MaxNameBytes - len(PartialSuffix)

// maxNumbered bounds the numbered names tried for one item.
const maxNumbered = 10000

// PlanNames chooses the final name in dir of each top-level item of m (the
// entries without "/"), in manifest order. An item keeps its own name unless
// NAME or NAME.kith-partial exists in dir or an earlier item of the plan took
// it (ignoring case); then it is numbered: "name (1).ext", "name (2).ext"...
// (a folder or a dotfile like ".bashrc" is numbered at the end: "album (1)",
// ".bashrc (1)"). With overwrite an item keeps its own name even if NAME
// exists, unless NAME.kith-partial does (another transfer is writing it).
// Names longer than NAME_MAX allows with the suffix are shortened.
func PlanNames(dir string, m *protocols.Manifest, overwrite bool) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer root.Close()
	taken := map[string]bool{}
	var names []string
	for _, e := range m.Entries {
		if strings.Contains(e.Path, "/") {
			continue
		}
		if err := protocols.CheckName(e.Path); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		name, err := freeName(root, e.Path, e.Dir, overwrite, taken)
		if err != nil {
			return nil, err
		}
		taken[protocols.FoldPath(name)] = true
		names = append(names, name)
	}
	return names, nil
}

// freeName returns the first of name, "name (1)"... that neither exists in
// root (unless overwrite allows name itself) nor has a partial there, and is
// not in taken (FoldPath'd names).
func freeName(root *os.Root, name string, dir, overwrite bool, taken map[string]bool) (string, error) {
	for k := range maxNumbered {
		c := numbered(name, k, dir)
		if c == "" || taken[protocols.FoldPath(c)] {
			continue
		}
		busy, err := exists(root, c+PartialSuffix)
		if err != nil || busy {
			if err != nil {
				return "", err
			}
			continue
		}
		if overwrite && k == 0 {
			return c, nil
		}
		if busy, err = exists(root, c); err != nil {
			return "", err
		} else if !busy {
			return c, nil
		}
	}
	return "", fmt.Errorf("files: no free name for %q in %s", name, root.Name())
}

// exists reports whether name exists in root (as anything, even a broken
// symbolic link).
func exists(root *os.Root, name string) (bool, error) {
	_, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("files: %w", err)
	}
	return true, nil
}

// numbered returns name with " (k)" before its extension (k > 0), shortened
// to maxFinalName bytes, or "" if that makes no valid name. Directories and
// dotfiles are numbered at the end.
func numbered(name string, k int, dir bool) string {
	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); !dir && i > 0 && len(name)-i <= 32 {
		stem, ext = name[:i], name[i:]
	}
	mark := ""
	if k > 0 {
		mark = " (" + strconv.Itoa(k) + ")"
	}
	if over := len(stem) + len(mark) + len(ext) - maxFinalName; over > 0 {
		stem = shorten(stem, len(stem)-over)
	}
	c := stem + mark + ext
	if stem == "" || protocols.CheckName(c) != nil {
		return ""
	}
	return c
}

// shorten cuts s to at most n bytes, at a rune boundary, keeping it NFC and
// without a trailing dot or space.
func shorten(s string, n int) string {
	if n <= 0 {
		return ""
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError && r != '.' && r != ' ' && norm.NFC.IsNormalString(s) {
			break
		}
		s = s[:len(s)-size]
	}
	return s
}
