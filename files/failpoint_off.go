//go:build !failpoint

package files

// Failpoints are compiled in only with -tags failpoint (failpoint_on.go);
// without it failpoint is an empty function the compiler removes.
func failpoint(string) {}
