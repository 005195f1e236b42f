// Package fscheck is the N4 part of internal/invariants (a temporary tree
// with canaries around the receive root, and snapshots to compare), kept
// under its old name for the tests that use it. It is for tests only.
package fscheck

import (
	"testing"

	"github.com/kithnet/kith/internal/invariants"
)

type (
	// Tree is invariants.Tree.
	Tree = invariants.Tree
	// Entry is invariants.Entry.
	Entry = invariants.Entry
	// Entries is invariants.Entries.
	Entries = invariants.Entries
)

// NewTree is invariants.NewTree.
func NewTree(t testing.TB) *Tree { return invariants.NewTree(t) }

// Snapshot is invariants.Snapshot.
func Snapshot(t testing.TB, root string) Entries { return invariants.Snapshot(t, root) }

// AssertUnchangedOutside is invariants.AssertUnchangedOutside.
func AssertUnchangedOutside(t testing.TB, before, after Entries, allowedRoot string) {
	invariants.AssertUnchangedOutside(t, before, after, allowedRoot)
}
