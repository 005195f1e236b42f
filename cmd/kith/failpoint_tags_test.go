//go:build failpoint

package main

// A test binary built with -tags failpoint builds kith with it too, so its
// daemons crash where $KITH_FAILPOINT says (files/failpoint_on.go).
func init() { kithBuildTags = []string{"-tags", "failpoint"} }
