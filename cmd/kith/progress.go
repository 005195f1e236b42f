package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kithnet/kith/cmd/kith/internal/termtext"
	"github.com/kithnet/kith/node"
)

// progress shows one transfer's progress on stderr. On a terminal it is a
// single line redrawn in place; elsewhere (a pipe, a file, a CI log) it is a
// plain line at most every few seconds. Messages (state changes, waits) are
// printed on lines of their own. Everything it prints passes through
// display, so text from peers cannot move the cursor or clear the screen.
type progress struct {
	w     io.Writer
	tty   bool
	width int           // terminal columns
	every time.Duration // without a terminal: the least time between lines
	now   func() time.Time
	label string // what is moving, e.g. "report.pdf to ben" (escaped)

	start time.Time // when the progress began, for the average rate
	rate  float64   // last known bytes per second
	last  time.Time // when the last line was printed (no terminal)
	drawn bool      // a bar is on the current line (terminal)
}

// plainEvery is how often progress prints a line when not on a terminal.
const plainEvery = 5 * time.Second

func newProgress(w io.Writer, label string) *progress {
	return &progress{
		w: w, tty: isTerminal(w), width: termWidth(), every: plainEvery,
		now: time.Now, start: time.Now(), label: termtext.Escape(label),
	}
}

// isTerminal reports whether w is a terminal that understands redrawing.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// termWidth is $COLUMNS, or 80.
func termWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 80
}

// update shows t's progress: redrawn at once on a terminal, else at most
// every few seconds.
func (p *progress) update(t node.TransferInfo) {
	if t.Rate > 0 {
		p.rate = t.Rate
	}
	if p.tty {
		fmt.Fprint(p.w, "\r"+p.barLine(t)+"\x1b[K")
		p.drawn = true
		return
	}
	if now := p.now(); p.last.IsZero() || now.Sub(p.last) >= p.every {
		p.last = now
		fmt.Fprintln(p.w, p.plainLine(t))
	}
}

// finish prints the summary of a completed transfer: size, time, average
// rate and path, replacing the bar.
func (p *progress) finish(t node.TransferInfo) {
	p.clear()
	took := p.now().Sub(p.start)
	avg := "-"
	if took > 0 && !p.start.IsZero() {
		avg = formatRate(float64(t.Bytes) / took.Seconds())
	}
	fmt.Fprintln(p.w, termtext.Escape(fmt.Sprintf("%s: done, %s in %s (%s), %s", p.label, termtext.Bytes(t.Bytes),
		took.Round(time.Millisecond), avg, pathText(t))))
}

// say prints a message on a line of its own (clearing the bar first).
func (p *progress) say(format string, args ...any) {
	p.clear()
	fmt.Fprintln(p.w, termtext.Escape(fmt.Sprintf(format, args...)))
}

// clear removes the bar from the terminal line, if one is drawn.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// barLine is the terminal form: label, bar, percent, bytes, rate, ETA and
// path, within the terminal's width. The label and then the bar give way
// to the figures.
func (p *progress) barLine(t node.TransferInfo) string {
	pct := percent(t)
	stats := fmt.Sprintf(" %3d%% %s/%s %s ETA %s %s", pct,
		termtext.Bytes(t.DoneBytes), termtext.Bytes(t.Bytes), formatRate(p.rate), formatETA(eta(t, p.rate)), pathText(t))
	room := p.width - 1 - utf8.RuneCountInString(stats)
	labelLen := min(utf8.RuneCountInString(p.label), max(8, room-12))
	line := truncate(p.label, labelLen)
	if barWidth := min(20, room-labelLen-3); barWidth >= 5 {
		fill := pct * barWidth / 100
		line += " [" + strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill) + "]"
	}
	return truncate(line+stats, p.width-1)
}

// plainLine is the form for logs: one sentence, no control characters.
func (p *progress) plainLine(t node.TransferInfo) string {
	return fmt.Sprintf("%s: %d%% (%s of %s) at %s, ETA %s, %s", p.label, percent(t),
		termtext.Bytes(t.DoneBytes), termtext.Bytes(t.Bytes), formatRate(p.rate), formatETA(eta(t, p.rate)), pathText(t))
}

// percent is the share of bytes verified, 0 to 100.
func percent(t node.TransferInfo) int {
	switch {
	case t.State == "done":
		return 100
	case t.Bytes <= 0:
		return 0
	}
	return int(min(100, t.DoneBytes*100/t.Bytes))
}

// eta is the time left at rate, or -1 when unknown.
func eta(t node.TransferInfo, rate float64) time.Duration {
	if rate <= 0 || t.Bytes <= t.DoneBytes {
		return -1
	}
	return time.Duration(float64(t.Bytes-t.DoneBytes) / rate * float64(time.Second))
}

// pathText says how the transfer travels: direct, relayed via which relay,
// or not connected yet.
func pathText(t node.TransferInfo) string {
	switch {
	case t.Path == node.PathRelayed && t.Relay != "":
		return "relayed via " + termtext.ShortID(t.Relay)
	case t.Path != "":
		return t.Path
	default:
		return "not connected"
	}
}

// formatRate writes bytes per second, or "- B/s" when unknown.
func formatRate(r float64) string {
	if r <= 0 {
		return "- B/s"
	}
	return termtext.Bytes(int64(r)) + "/s"
}

// formatETA writes d as m:ss or h:mm:ss; "-:--" when unknown (negative).
func formatETA(d time.Duration) string {
	switch {
	case d < 0:
		return "-:--"
	case d >= 100*time.Hour:
		return ">99h"
	}
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
