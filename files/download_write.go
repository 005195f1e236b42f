package files

import (
	"context"
	"fmt"
	"time"

	"github.com/kithnet/kith/protocols"
)

// write verifies each chunk the reader hands over, writes the good ones and
// journals them; a chunk that fails verification is requested again, up to
// maxChunkFailures times. When the fetch stops (the sender died, the stream
// broke, the service closes) it journals what it verified since the last
// record, so that the resume starts from the last verified chunk.
func (p *pump) write(ctx context.Context) error {
	j := p.newJournal()
	left := p.lay.total - countSet(p.verified, p.lay.total)
	failures := make(map[int]int)
	for left > 0 {
		var f filled
		select {
		case f = <-p.filled:
		case <-ctx.Done():
			j.flush()
			return ctx.Err()
		}
		ok, err := p.settle(f, failures)
		p.recycle(f.buf)
		p.release()
		if err != nil {
			return err
		}
		if !ok {
			p.retry <- f.ref // never blocks: at most slots are outstanding
			continue
		}
		left--
		if err := j.note(int64(f.ref.size), left == 0); err != nil {
			return err
		}
	}
	close(p.done)
	return nil
}

// settle verifies one chunk and writes it; false means it must be
// requested again.
func (p *pump) settle(f filled, failures map[int]int) (bool, error) {
	e := &p.lay.m.Entries[f.ref.entry]
	if protocols.HashChunk(f.buf) != e.Chunks[f.ref.index] {
		failures[f.ref.g]++
		p.s.log.Debug("chunk failed verification", "id", p.t.ID, "entry", f.ref.entry, "chunk", f.ref.index, "failures", failures[f.ref.g])
		if failures[f.ref.g] >= maxChunkFailures {
			p.refuse(protocols.CodeSourceChanged, "a chunk failed verification 3 times")
			return false, permanent{fmt.Errorf("files: chunk %d of %q failed verification %d times; the sender sends corrupt data",
				f.ref.index, e.Path, maxChunkFailures)}
		}
		return false, nil
	}
	if err := p.sink.WriteChunk(f.ref.entry, f.ref.index, f.buf); err != nil {
		return false, err
	}
	p.verified.set(f.ref.g)
	return true, nil
}

// journalBytes bounds what a crash costs a fast transfer: besides every
// JournalEvery, the journal syncs and records as soon as this many bytes
// were verified since it last did (every 64 ms at 500 MB/s). A receiver
// killed at 90% then fetches again at most this much, plus the chunks in
// flight, beyond the 10% it lacked.
const journalBytes = 32 << 20

// journal records verified chunks in the store, every JournalEvery or
// journalBytes, after syncing the bytes they were written to: what the
// store calls verified survives a crash.
type journal struct {
	p       *pump
	base    int64 // bytes verified before this fetch
	meter   *rateMeter
	last    time.Time
	pending int64 // bytes verified since the last record
	total   int64 // bytes verified in this fetch
	rate    float64
}

func (p *pump) newJournal() *journal {
	return &journal{p: p, base: p.lay.verifiedBytes(p.verified), meter: &rateMeter{}, last: time.Now()}
}

// note counts n verified bytes, journals when it is time (or final), and
// reports progress when the meter says so and at each timed journal.
func (j *journal) note(n int64, final bool) error {
	total, rate, report := j.meter.add(n)
	if report {
		j.rate = rate
	}
	j.pending, j.total = j.pending+n, total
	timed := final || time.Since(j.last) >= j.p.s.cfg.JournalEvery
	if timed || j.pending >= journalBytes {
		if err := j.record(total); err != nil {
			return err
		}
	}
	if report || timed { // not every journalBytes: a few events a second
		j.progress(total, j.rate)
	}
	return nil
}

// flush records what was verified since the last record, if anything, as
// the fetch stops. It does not after a failed write (the disk may be full:
// its sync could fail too, and the next fetch starts from the last record).
func (j *journal) flush() {
	if j.pending == 0 {
		return
	}
	if err := j.record(j.total); err != nil {
		j.p.s.log.Debug("journal as the fetch stopped", "id", j.p.t.ID, "err", err)
	}
}

// record syncs what was written, then records it as verified.
func (j *journal) record(total int64) error {
	j.last, j.pending = time.Now(), 0
	if err := j.p.sink.Sync(); err != nil {
		return err
	}
	failpoint(FailAfterSync)
	done := j.base + total
	snap := append([]byte(nil), j.p.verified...)
	ctx := context.WithoutCancel(j.p.s.ctx)
	if err := j.p.s.store.UpdateTransfer(ctx, j.p.t.ID, Update{Verified: snap, DoneBytes: &done}); err != nil {
		return fmt.Errorf("files: journal: %w", err)
	}
	return nil
}

func (j *journal) progress(total int64, rate float64) {
	t := j.p.t
	t.DoneBytes = j.base + total
	j.p.s.emit(EventProgress, t, rate)
}

// countSet counts the set bits of b among the first n.
func countSet(b bitmap, n int) int {
	c := 0
	for i := range n {
		if b.has(i) {
			c++
		}
	}
	return c
}
