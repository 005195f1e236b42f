package files

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// A transfer yields to the messages that share its connection.
//
// On TCP, every stream of a connection goes through one queue: yamux's send
// queue, then the kernel's socket buffer, then the slowest link. A sender
// that writes chunks as fast as yamux takes them fills that queue, and a
// chat message written after them waits until they are all sent: seconds
// on a 1 Mbit/s uplink, and more as yamux, measuring its round trips through
// that same queue, grows the stream's window (14 s after 2.5 min was seen
// in node/natlab, RELIABILITY F12). QUIC schedules its streams in turn, but
// a loss-based sender still fills the link's own buffer.
//
// So a sender measures the queue it makes: it pings the receiver on the
// transfer's own connection, whose answer comes back only after everything
// written before it went through (one ping stream and one window per
// connection, shared by the transfers it carries). The least round trip is the path's own;
// anything above it is queueing. The sender keeps the chunk bytes written
// and not yet acknowledged by an answered ping within a window, which grows
// while the queueing delay stays under a target and shrinks when it goes
// above: a delay-based window like LEDBAT's (RFC 6817), clocked by pings
// instead of acks. On a fast link the delay stays near zero, the window
// grows past anything yamux allows and the transfer goes at full speed.

const (
	yieldInitWindow = 32 << 10
	yieldMinWindow  = 16 << 10
	// yieldMaxWindow is beyond yamux's largest stream window (16 MiB): a
	// window this large no longer limits anything.
	yieldMaxWindow = 64 << 20
	// yieldSamples is how many of the last round trips the queueing delay
	// that shrinks the window is the least of: one answer held up by the
	// scheduler is not a queue.
	yieldSamples = 2
	// yieldPingEvery is the least number of bytes between two pings: a
	// ping goes after every quarter of the window, and at least every
	// this many bytes, so that the answers clock the window smoothly.
	yieldPingEvery = 8 << 10
	// yieldMaxPings bounds the pings awaiting an answer.
	yieldMaxPings = 16
)

// window is a transfer's delay-based send window. Its methods are safe for
// concurrent use; times come from the caller.
type window struct {
	target time.Duration

	mu      sync.Mutex
	wake    chan struct{} // closed (and replaced) when a writer may go on
	data    chan struct{} // signalled when bytes are written
	ready   bool          // the first round trip, made before any byte, is known
	off     bool          // no measurement: the window does not limit
	cwnd    int64
	written int64 // chunk bytes written
	acked   int64 // chunk bytes written before the last answered ping
	limited bool  // a writer waited (for the window or a ping) since the last answer
	pings   int   // pings sent and not answered
	pinged  int64 // bytes written when the last ping was sent
	slow    bool  // slow start: the window doubles per round trip
	base    time.Duration
	recent  []time.Duration
	lastCut time.Time
}

func newWindow(target time.Duration) *window {
	return &window{
		target: target, wake: make(chan struct{}), data: make(chan struct{}, 1),
		cwnd: yieldInitWindow, slow: true,
	}
}

// allow says how many of n bytes may be written now; with none, it returns
// a channel closed when that may have changed.
func (w *window) allow(n int) (int, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off {
		return n, nil
	}
	if w.ready {
		// At most a slice past the last ping: a ping goes out between
		// slices, and their answers clock the window.
		open := w.cwnd - (w.written - w.acked)
		if room := min(open, w.pinged+w.slice()-w.written); room > 0 {
			return int(min(int64(n), room)), nil
		}
		w.limited = true
	}
	return 0, w.wake
}

// slice is how many bytes go between two pings: a quarter of the window,
// at least yieldPingEvery.
func (w *window) slice() int64 { return max(w.cwnd/4, yieldPingEvery) }

// wrote records n bytes written.
func (w *window) wrote(n int) {
	w.mu.Lock()
	w.written += int64(n)
	w.mu.Unlock()
	select {
	case w.data <- struct{}{}:
	default:
	}
}

// nextPing waits until a ping is due and returns the bytes written when it
// goes, having counted it: the first ping goes before any byte, to learn
// the path's own round trip; then one goes when nothing awaits an answer
// and bytes were written since the last, or when a slice was (the writer
// waits for that ping before it writes more).
func (w *window) nextPing(ctx context.Context) (int64, error) {
	for {
		w.mu.Lock()
		wake := w.wake
		unsent := w.written - w.pinged
		due := !w.ready && w.pings == 0 ||
			w.ready && unsent > 0 && w.pings < yieldMaxPings &&
				(w.pings == 0 || unsent >= w.slice())
		if due {
			w.pings++
			w.pinged = w.written
			w.broadcast()
			w.mu.Unlock()
			return w.pinged, nil
		}
		w.mu.Unlock()
		select {
		case <-w.data:
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// answered records the answer, at now after rtt, to a ping sent once mark
// bytes were written, and sizes the window by the queueing delay.
func (w *window) answered(mark int64, rtt time.Duration, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.broadcast()
	w.pings = max(0, w.pings-1)
	newly := max(0, mark-w.acked)
	w.acked = max(w.acked, mark)
	if !w.ready {
		// The first ping goes before any byte: the path's own round trip.
		w.base, w.ready = rtt, true
		return
	}
	w.base = min(w.base, rtt)
	w.recent = append(w.recent, rtt)
	if len(w.recent) > yieldSamples {
		w.recent = w.recent[1:]
	}
	cur := rtt
	for _, r := range w.recent {
		cur = min(cur, r)
	}
	w.resize(cur-w.base, rtt-w.base, cur, newly, now)
	w.limited = false
}

// resize shrinks the window when the queueing delay q (the least of the
// last few) is above the target, and grows it while the last one is below
// and the window held the writer back: by the newly acknowledged bytes in
// slow start (doubling it per round trip), by up to a quarter of them
// after, less the nearer the queue is to the target. cur is the current
// round trip.
func (w *window) resize(q, last, cur time.Duration, newly int64, now time.Time) {
	switch {
	case q > w.target:
		// Shrink at most once per round trip: the answers that follow were
		// queued before the cut took effect.
		if now.Sub(w.lastCut) >= cur {
			f := max(0.5, float64(w.target)/float64(q))
			w.cwnd = max(yieldMinWindow, int64(float64(w.cwnd)*f))
			w.lastCut, w.slow = now, false
		}
	case !w.limited || last > w.target:
		// The window held nothing back, so says nothing about a larger
		// one; or the queue is over the target again.
	case w.slow && last < w.target/2:
		w.cwnd = min(yieldMaxWindow, w.cwnd+newly)
	default:
		w.slow = false
		g := 0.25 * float64(w.target-last) / float64(w.target)
		w.cwnd = min(yieldMaxWindow, w.cwnd+int64(float64(newly)*g))
	}
}

// disable stops limiting: nothing measures the connection any more.
func (w *window) disable() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.off = true
	w.broadcast()
}

func (w *window) broadcast() {
	close(w.wake)
	w.wake = make(chan struct{})
}

// state is the window's size and the bytes in it, for tests and logs.
func (w *window) state() (cwnd, inFlight int64, off bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cwnd, w.written - w.acked, w.off
}

// pacedWriter writes through w what its window allows, waiting for room.
type pacedWriter struct {
	ctx context.Context
	w   io.Writer
	win *window
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k, wake := p.win.allow(len(b))
		if k == 0 {
			select {
			case <-wake:
				continue
			case <-p.ctx.Done():
				return n, p.ctx.Err()
			}
		}
		m, err := p.w.Write(b[:k])
		p.win.wrote(m)
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

// pinger sends pings on a connection and reads their answers, in order.
type pinger interface {
	send() error
	recv() error
	close() // makes a blocked send or recv return
}

// measure pings while the transfer writes, and feeds the answers to w.
// open opens a pinger on the transfer's connection; a pinger that fails is
// replaced (a ping stream lasts 30 s at most), but when opening fails, or
// a new pinger fails before any answer, w stops limiting. It returns when
// ctx ends or it gives up.
func (w *window) measure(ctx context.Context, open func(context.Context) (pinger, error), gap time.Duration) error {
	defer w.disable()
	for {
		p, err := open(ctx)
		if err != nil {
			return err
		}
		n, err := w.probe(ctx, p, gap)
		if ctx.Err() != nil {
			return nil
		}
		if n == 0 {
			return err
		}
		// The answers awaited are lost with the stream: ping again for
		// what they would have acknowledged.
		w.mu.Lock()
		w.pings, w.pinged = 0, w.acked
		w.mu.Unlock()
	}
}

// probe sends pings on p as they are due, at most one per gap, and reads
// their answers, until p fails or ctx ends. It returns how many answers
// came, and closes p.
func (w *window) probe(ctx context.Context, p pinger, gap time.Duration) (int, error) {
	type sent struct {
		mark int64
		at   time.Time
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan sent, yieldMaxPings)
	answers := 0
	var rerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		for {
			var s sent
			select {
			case s = <-out:
			case <-ctx.Done():
				return
			}
			if rerr = p.recv(); rerr != nil {
				return
			}
			answers++
			w.answered(s.mark, time.Since(s.at), time.Now())
		}
	}()
	var err error
	for {
		var mark int64
		if mark, err = w.nextPing(ctx); err != nil {
			break
		}
		at := time.Now()
		if err = p.send(); err != nil {
			break
		}
		out <- sent{mark, at} // never blocks: at most yieldMaxPings await an answer
		select {
		case <-time.After(gap):
		case <-ctx.Done():
		}
	}
	p.close()
	<-done
	if err == nil || errors.Is(err, context.Canceled) {
		err = rerr // the reader failed first (and cancelled ctx)
	}
	return answers, err
}
