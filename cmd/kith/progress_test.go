package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

func TestFormatRate(t *testing.T) {
	if got := formatRate(12.5 * (1 << 20)); got != "12.5 MiB/s" {
		t.Errorf("formatRate = %q", got)
	}
	if got := formatRate(0); got != "- B/s" {
		t.Errorf("unknown rate = %q", got)
	}
}

func TestFormatETA(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-1, "-:--"}, {0, "0:00"}, {3 * time.Second, "0:03"}, {1500 * time.Millisecond, "0:02"},
		{62 * time.Second, "1:02"}, {time.Hour + 2*time.Minute + 3*time.Second, "1:02:03"}, {200 * time.Hour, ">99h"},
	}
	for _, tt := range tests {
		if got := formatETA(tt.d); got != tt.want {
			t.Errorf("formatETA(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	tr := node.TransferInfo{Bytes: 100 << 20, DoneBytes: 40 << 20}
	if got := eta(tr, 10<<20); got != 6*time.Second {
		t.Errorf("eta = %v, want 6s", got)
	}
	if got := eta(tr, 0); got != -1 {
		t.Errorf("eta without a rate = %v", got)
	}
}

func sample() node.TransferInfo {
	return node.TransferInfo{Bytes: 64 << 20, DoneBytes: 16 << 20, State: "active", Path: "direct", Rate: 8 << 20}
}

// On a terminal the bar is redrawn in place on one line, within the width.
func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	p := &progress{w: &out, tty: true, width: 80, every: plainEvery, now: time.Now, label: termtext.Escape("report.pdf to ben")}
	p.update(sample())
	tr := sample()
	tr.DoneBytes, tr.Path, tr.Relay = 32<<20, node.PathRelayed, "12D3KooWJ89NTkb3FBgm6YVGZFUQtySizArhXa7WJz4udY2221zQ"
	p.update(tr)
	p.say("done")
	s := out.String()
	if strings.Count(s, "\r") != 3 || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\r\x1b[Kdone\n") {
		t.Fatalf("terminal output: %q", s)
	}
	first := strings.TrimSuffix(strings.Split(s, "\r")[1], "\x1b[K")
	for _, want := range []string{"report.pdf to ben", " 25%", "16.0 MiB/64.0 MiB", "8.0 MiB/s", "ETA 0:06", "direct"} {
		if !strings.Contains(first, want) {
			t.Errorf("bar %q lacks %q", first, want)
		}
	}
	second := strings.Split(s, "\r")[2]
	if n := utf8.RuneCountInString(strings.TrimSuffix(second, "\x1b[K")); n >= 80 {
		t.Errorf("second bar is %d columns wide", n)
	}
	if !strings.Contains(second, " 50%") || !strings.Contains(second, "relayed via 12D3KooW…2221zQ") {
		t.Errorf("second bar: %q", second)
	}
	long := &progress{w: &out, tty: true, width: 60, label: strings.Repeat("x", 200)}
	if line := long.barLine(sample()); utf8.RuneCountInString(line) >= 60 || !strings.Contains(line, "…") {
		t.Errorf("bar not cut to the width (%d): %q", utf8.RuneCountInString(line), line)
	}
}

// Without a terminal, plain lines, at most one every few seconds.
func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1000, 0)
	p := &progress{w: &out, every: 5 * time.Second, now: func() time.Time { return now }, label: "data.bin from ana"}
	for i := range 10 {
		tr := sample()
		tr.DoneBytes = int64(i) << 20
		p.update(tr)
		now = now.Add(time.Second)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines in 10 s, want 2:\n%s", len(lines), out.String())
	}
	if lines[0] != "data.bin from ana: 0% (0 B of 64.0 MiB) at 8.0 MiB/s, ETA 0:08, direct" {
		t.Errorf("plain line: %q", lines[0])
	}
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("control characters without a terminal: %q", out.String())
	}
}

// Names and errors from peers cannot inject control characters.
func TestProgressEscapesPeerText(t *testing.T) {
	hostile := "evil\x1b[2J\r\u202enam\x07e.txt"
	for _, tty := range []bool{true, false} {
		var out bytes.Buffer
		p := newProgress(&out, hostile+" from ben")
		p.tty = tty
		p.update(sample())
		p.say("failed: %s", hostile)
		s := out.String()
		// The only control characters are the renderer's own: \r, ESC [K
		// and newlines.
		s = strings.NewReplacer("\x1b[K", "", "\r", "", "\n", "").Replace(s)
		for _, r := range s {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
				t.Fatalf("tty=%v: control character %q in %q", tty, r, out.String())
			}
		}
		if !strings.Contains(s, `evil\x1b[2J\r\u202enam\ae.txt`) {
			t.Errorf("tty=%v: hostile name not shown escaped: %q", tty, s)
		}
	}
}

func TestProgressFinish(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1000, 0)
	p := &progress{w: &out, tty: true, drawn: true, now: func() time.Time { return now }, start: now.Add(-2 * time.Second),
		label: "big.bin to ben"}
	tr := sample()
	tr.State, tr.DoneBytes = "done", tr.Bytes
	p.finish(tr)
	if got := out.String(); got != "\r\x1b[Kbig.bin to ben: done, 64.0 MiB in 2s (32.0 MiB/s), direct\n" {
		t.Fatalf("finish: %q", got)
	}
}
