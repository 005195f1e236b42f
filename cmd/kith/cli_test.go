package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kithBin is the kith binary built once for the tests that run real
// processes, with kithBuildTags: the test binary's own build tags that
// change kith (failpoint_tags_test.go).
var (
	kithBin       string
	kithBuildTags []string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kith-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kithBin = filepath.Join(dir, "kith")
	build := exec.Command("go", append(append([]string{"build"}, kithBuildTags...), "-o", kithBin, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kith:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loopbackFlags keep a test node on 127.0.0.1 with random ports and no mDNS.
var loopbackFlags = []string{
	"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--no-mdns",
}

// newHome returns a fresh home whose config keeps embedded nodes on loopback.
func newHome(t testing.TB) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	writeFile(t, filepath.Join(home, "config.toml"), `[network]
listen = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]
mdns = false
`)
	return home
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// result is a finished kith command.
type result struct {
	stdout, stderr string
	code           int
}

// run runs kith to completion with a deadline.
func run(t *testing.T, home string, args ...string) result {
	t.Helper()
	return runIn(t, home, nil, args...)
}

// runStdin is run with stdin.
func runStdin(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	return runIn(t, home, strings.NewReader(stdin), args...)
}

func runIn(t *testing.T, home string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kithBin, append([]string{"--home", home}, args...)...)
	cmd.Stdin = stdin // nil: /dev/null
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kith %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// mustRun runs kith and fails the test unless it exits 0.
func mustRun(t *testing.T, home string, args ...string) string {
	t.Helper()
	r := run(t, home, args...)
	if r.code != 0 {
		t.Fatalf("kith %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// daemon is a kith daemon or relay running as a child process.
type daemon struct {
	cmd    *exec.Cmd
	home   string
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout chan string // lines
	done   chan struct{}
}

// startDaemon starts `kith VERB` (daemon or relay) and waits until it says
// it is ready. It is stopped with SIGTERM when the test ends.
func startDaemon(t testing.TB, home, verb string, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, home, nil, verb, append(slices.Clone(loopbackFlags), args...)...)
}

// startDaemonEnv is startDaemon with env added to the test's environment
// and without loopbackFlags: the home's config says where to listen.
func startDaemonEnv(t testing.TB, home string, env []string, verb string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(kithBin, append([]string{"--home", home, verb}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	d := &daemon{cmd: cmd, home: home, done: make(chan struct{}), stdout: make(chan string, 64)}
	stderr, _ := cmd.StderrPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var once sync.Once
	go d.scan(stderr, func(line string) {
		d.stderr.WriteString(line + "\n")
		if strings.Contains(line, `msg="`+verb+` ready"`) {
			once.Do(func() { close(ready) })
		}
	})
	go d.scan(stdout, func(line string) {
		select {
		case d.stdout <- line:
		default: // nobody reads that far
		}
	})
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })
	select {
	case <-ready:
		return d
	case <-d.done:
		t.Fatalf("kith %s exited before ready: %v\n%s", verb, cmd.ProcessState, d.logs())
	case <-time.After(waitBound):
		t.Fatalf("kith %s not ready within %s\n%s", verb, waitBound, d.logs())
	}
	return nil
}

func (d *daemon) scan(r io.Reader, f func(string)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		d.mu.Lock()
		f(sc.Text())
		d.mu.Unlock()
	}
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// line waits for the daemon's next line on stdout.
func (d *daemon) line(t testing.TB) string {
	t.Helper()
	select {
	case l := <-d.stdout:
		return l
	case <-d.done:
		t.Fatalf("daemon exited before printing a line\n%s", d.logs())
	case <-time.After(waitBound):
		t.Fatalf("no line from the daemon within %s\n%s", waitBound, d.logs())
	}
	return ""
}

// stop ends the daemon with SIGTERM and waits for it.
func (d *daemon) stop(t testing.TB) {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("daemon in %s ignored SIGTERM\n%s", d.home, d.logs())
	}
}

// kill ends the daemon with SIGKILL, as a crash would.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// keys returns the sorted top-level keys of a JSON object.
func keys(t *testing.T, s string) []string {
	return slices.Sorted(maps.Keys(decodeJSON[map[string]json.RawMessage](t, s)))
}

// waitBound bounds every wait of a test on an event: a broken test fails
// after it instead of hanging until the test binary's timeout.
const waitBound = time.Minute
