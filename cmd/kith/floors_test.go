package main

import (
	"runtime/debug"
	"testing"

	"golang.org/x/mod/semver"
)

// cveFloors are the lowest versions that carry the fixes of every CVE
// RELIABILITY.md lists for this stack (each a size checked too late). The
// binary must be built with these or later.
var cveFloors = []struct{ module, floor, cves string }{
	{"github.com/libp2p/go-libp2p", "v0.29.1", "CVE-2022-23492 (v0.18.0), CVE-2023-40583 (v0.27.4), CVE-2023-39533 (v0.27.8/v0.28.2/v0.29.1)"},
	{"github.com/quic-go/quic-go", "v0.50.1", "CVE-2023-49295 (v0.40.1), CVE-2024-22189 (v0.42.0), CVE-2024-53259 (v0.48.2), CVE-2025-29785 (v0.50.1)"},
}

// The kith binary links dependency versions above every listed CVE's fix.
func TestDependencyFloors(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	linked := map[string]string{}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		linked[d.Path] = d.Version
	}
	for _, f := range cveFloors {
		v, ok := linked[f.module]
		if !ok {
			t.Errorf("%s is not linked: the floor check cannot see it", f.module)
			continue
		}
		if semver.Compare(v, f.floor) < 0 {
			t.Errorf("%s %s is below %s, which fixes %s", f.module, v, f.floor, f.cves)
		}
		t.Logf("%s %s ≥ %s", f.module, v, f.floor)
	}
}
