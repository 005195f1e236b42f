//go:build natlab

package natlab

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kithBin is the kith binary, built once by TestMain.
var kithBin string

// helperEnv, when set, makes the test binary a tiny HTTP client instead of a
// test run: it GETs the URL in the variable, prints the body and exits. The
// lab runs it inside a namespace (ip netns exec) to read a relay's metrics
// without depending on kith or curl.
const helperEnv = "NATLAB_HELPER_GET"

func TestMain(m *testing.M) {
	if url := os.Getenv(helperEnv); url != "" {
		os.Exit(httpGet(url))
	}
	if cfg := os.Getenv(ChurnEnv); cfg != "" {
		os.Exit(ChurnHelper(cfg)) // relay clients for RELIABILITY L3 (relaychurn.go)
	}
	flag.Parse()
	defaultParallel()
	if why := Unavailable(); why != "" {
		os.Exit(m.Run()) // every test skips, saying why; no kith to build
	}
	if err := SweepStale(); err != nil {
		fmt.Fprintln(os.Stderr, "natlab: removing stale lab namespaces:", err)
	}
	dir, err := os.MkdirTemp("", "natlab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kithBin = filepath.Join(dir, "kith")
	build := exec.Command("go", "build", "-o", kithBin, "./cmd/kith")
	build.Dir = moduleRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "natlab: building kith:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// labParallel is how many lab tests run at once unless -parallel says
// otherwise: they spend nearly all their time waiting for timers in kith
// (AutoNAT's dial-back timeout above all), not on the CPU.
const labParallel = 6

// defaultParallel raises -test.parallel (GOMAXPROCS by default) to
// labParallel when it was not given on the command line.
func defaultParallel() {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", fmt.Sprint(labParallel))
	}
}

// moduleRoot is two directories up from this package (node/natlab).
func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return filepath.Dir(filepath.Dir(wd))
}

func httpGet(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fetch GETs url from inside namespace ns by running this test binary there
// in helper mode.
func fetch(t *testing.T, ns, url string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self)
	cmd.Env = append(os.Environ(), helperEnv+"="+url)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("GET %s in %s: %w: %s", url, ns, err, errb.String())
	}
	return string(out), nil
}
