package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kithnet/kith/files"
	"github.com/kithnet/kith/node"
	"github.com/kithnet/kith/node/store"
)

// BenchmarkResumeAt90 measures how much of a transfer a receiver crash
// costs, over TCP. Each iteration first sends the file whole (full: from
// SendFiles' return to ana's "done", as in BenchmarkFileTransfer), then
// sends it again, follows ben's progress until 90% is verified (see
// waitNinety), SIGKILLs ben's daemon and starts it again on the same home.
//
// resume-s runs from that restart until ana's "done" event (which comes
// after ben verified and finalized everything); resume/full is the goal
// figure (≤ 0.15; a perfect resume with an instant restart would be 0.10).
// killed-at is what ana had sent by the kill, as a fraction of the size
// (an upper bound of what ben had verified: at most the request window
// more), and resume/full@90 corrects each iteration for a kill past 90%,
// adding (killed-at - 0.9) of the full transfer's time. Besides: start-s,
// the restart until the daemon says it is ready; kept-MB, what ben's
// journal held when it was killed (read from its database before the
// restart); resent-MB, the chunk bytes ana served for the transfer beyond
// its size (GET /v1/bench/stats).
func BenchmarkResumeAt90(b *testing.B) {
	size := benchSize(b)
	src, sum := benchSource(b, size)
	p := startPair(b, benchTransports[0].listen)
	var full, resume, start time.Duration
	var at90 float64
	var kept, resent, sent int64
	n := 0
	for b.Loop() {
		n++
		_, fp := p.kithSend(b, src, size, sum)
		f := fp.wall
		r := p.resumeAt90(b, src, size, sum)
		killedAt := float64(r.sent) / float64(size)
		b.Logf("#%d: full %s, resume %s (restart to ready %s), resume/full %.3f (killed at %.3f; @90 %.3f); at the kill %.0f MB sent, %.0f MB journaled; %.0f MB sent again",
			n, f.Round(time.Millisecond), r.took.Round(time.Millisecond), r.start.Round(time.Millisecond), r.took.Seconds()/f.Seconds(),
			killedAt, r.took.Seconds()/f.Seconds()+killedAt-0.9, float64(r.sent)/1e6, float64(r.kept)/1e6, float64(r.resent)/1e6)
		full, resume, start = full+f, resume+r.took, start+r.start
		kept, resent, sent = kept+r.kept, resent+r.resent, sent+r.sent
		at90 += r.took.Seconds()/f.Seconds() + killedAt - 0.9
	}
	avg := func(v int64) float64 { return float64(v) / float64(n) / 1e6 }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(full.Seconds()/float64(n), "full-s")
	b.ReportMetric(resume.Seconds()/float64(n), "resume-s")
	b.ReportMetric(start.Seconds()/float64(n), "start-s")
	b.ReportMetric(resume.Seconds()/full.Seconds(), "resume/full")
	b.ReportMetric(at90/float64(n), "resume/full@90")
	b.ReportMetric(float64(sent)/float64(n)/float64(size), "killed-at")
	b.ReportMetric(avg(kept), "kept-MB")
	b.ReportMetric(avg(resent), "resent-MB")
}

// resumed is what one interrupted transfer measured.
type resumed struct {
	took, start time.Duration
	sent        int64 // bytes ana had sent when ben was killed (≥ verified)
	kept        int64 // ben's journal at the kill
	resent      int64 // bytes ana served beyond the size
}

// resumeAt90 sends src, kills ben at 90% and restarts it; it returns once
// ana's side is done, after checking ben's copy.
func (p *pair) resumeAt90(b *testing.B, src string, size int64, sum [32]byte) resumed {
	ctx, cancel := context.WithTimeout(b.Context(), transferBound)
	defer cancel()
	p.clear(b, size)
	st0, err := p.ac.BenchStats(ctx)
	must(b, err)
	out, err := p.ac.SendFiles(ctx, "ben", []string{src})
	must(b, err)
	in := p.bEv.offerFrom(b, p.aID)
	p.bEv.waitNinety(b, in.ID, size)
	st, err := p.ac.BenchStats(ctx)
	must(b, err)
	p.b.kill()
	r := resumed{sent: st.FilesSentBytes - st0.FilesSentBytes}
	r.kept = journaled(b, p.bHome, in.ID)
	// As before every copy (see clear): measured here, without it the
	// resume's writes into cold memory took 0.3 s more (0.6-0.7 s, not
	// 0.3), and a plain pause before the restart did not help.
	p.clear(b, size)
	restart := time.Now()
	p.b = startBenchDaemon(b, p.bHome, "ben")
	r.start = time.Since(restart)
	p.aEv.waitState(b, out.ID, "done")
	r.took = time.Since(restart)
	p.bc = benchClient(b, p.bHome)
	got, err := p.bc.Transfer(ctx, in.ID)
	must(b, err)
	if got.State != "done" {
		b.Fatalf("ana is done but ben's side is %s", got.State)
	}
	p.checkReceived(b, got, sum)
	p.bEv = followEvents(b, p.bc)
	st1, err := p.ac.BenchStats(ctx)
	must(b, err)
	r.resent = st1.FilesSentBytes - st0.FilesSentBytes - size
	return r
}

// waitNinety follows ben's progress on transfer id until it has verified
// 90% of size: an event at or past it, or, when the next event (they come
// every 250 ms or so, 10% of a GiB here) would come too late, the moment
// the last event's rate predicts. Choosing that moment is the measurement,
// not a wait for something to happen.
func (f *eventFeed) waitNinety(b *testing.B, id string, size int64) {
	target := size / 10 * 9
	var at <-chan time.Time
	for {
		var ev node.Event
		select {
		case ev = <-f.ch:
		case <-at:
			return
		case <-f.done:
			b.Fatalf("event stream ended (%v) before 90%% of %s", f.err, id)
		case <-time.After(transferBound):
			b.Fatalf("%s not at 90%% within %s", id, transferBound)
		}
		t := ev.Transfer
		if t.ID != id || t.State == "offered" {
			continue
		}
		if t.State != "active" {
			b.Fatalf("ben's transfer is %s (%s) before 90%%", t.State, t.Error)
		}
		if t.DoneBytes >= target {
			return
		}
		if wait := time.Duration(float64(target-t.DoneBytes) / t.Rate * float64(time.Second)); t.Rate > 0 && wait < 300*time.Millisecond {
			at = time.After(wait - time.Since(ev.Time)) // the newest estimate
		}
	}
}

// journaled reads, from the database of a daemon that is not running, how
// many bytes of incoming transfer id its journal records as verified.
func journaled(b *testing.B, home, id string) int64 {
	tid, err := files.ParseTransferID(id)
	must(b, err)
	st, err := store.Open(filepath.Join(home, store.File))
	must(b, err)
	defer st.Close()
	t, err := st.Transfer(b.Context(), tid)
	must(b, err)
	return t.DoneBytes
}
