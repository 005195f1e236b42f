package chattest

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestFitRecoversALine(t *testing.T) {
	var samples []Sample
	for i := range 60 {
		at := time.Duration(i) * time.Minute
		samples = append(samples, Sample{At: at, LiveHeap: 1000 + 20*at.Hours()})
	}
	tr := Fit(samples, 10*time.Minute, func(s Sample) float64 { return s.LiveHeap })
	if tr.N != 50 || math.Abs(tr.Slope-20) > 1e-9 || tr.SlopeErr > 1e-9 {
		t.Fatalf("fit of y = 1000 + 20/h from minute 10: %+v, want 50 samples, slope 20/h, no error", tr)
	}
	if !tr.Growing(1) {
		t.Errorf("%v: a 2%%/h rise with no noise should count as growing above 1%%/h", tr)
	}
}

// TestRetainedHeapSeesWhatIsHeld checks that a sampler started with
// RetainedHeap reads a buffer the program holds, and stops reading it once
// the program lets it go: what the L9 soak judges its heap by.
func TestRetainedHeapSeesWhatIsHeld(t *testing.T) {
	s := &Sampler{start: time.Now(), retained: true}
	const size = 64 << 20
	held := make([]byte, size)
	for i := range held {
		held[i] = byte(i)
	}
	s.take()
	runtime.KeepAlive(held)
	held = nil
	s.take()
	got := s.Samples()
	if len(got) != 2 {
		t.Fatalf("%d samples, want 2", len(got))
	}
	if got[0].Retained < size || got[1].Retained > got[0].Retained-size/2 {
		t.Fatalf("retained heap %.0f MiB holding a 64 MiB buffer, then %.0f MiB without it: want the buffer in the first only",
			got[0].Retained/(1<<20), got[1].Retained/(1<<20))
	}
	plain := &Sampler{start: time.Now()}
	plain.take()
	if r := plain.Samples()[0].Retained; r != 0 {
		t.Errorf("a sampler without RetainedHeap read a retained heap of %.0f bytes, want none (no forced GC)", r)
	}
}

func TestWriteSamples(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.csv")
	in := []Sample{
		{At: 10 * time.Second, LiveHeap: 1 << 20, Retained: 1 << 19, HeapObj: 3 << 20, Goroutines: 42, Extra: 7},
		{At: 20 * time.Second, LiveHeap: 2 << 20, Retained: 1 << 20, HeapObj: 4 << 20, Goroutines: 43},
	}
	if err := WriteSamples(path, in); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"seconds", "live_heap", "retained_heap", "heap_objects", "goroutines", "extra"},
		{"10", "1048576", "524288", "3145728", "42", "7"},
		{"20", "2097152", "1048576", "4194304", "43", "0"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d column %d = %q, want %q", i, j, rows[i][j], want[i][j])
			}
		}
	}
}
