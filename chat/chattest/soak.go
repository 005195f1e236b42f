package chattest

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SoakDurationEnv names the environment variable that sets how long the
// soak tests (build tag soak) run: a Go duration, 30s when unset (the CI
// variant); `just soak` sets 30m, and a nightly run 24h. Each test says
// which share of it it takes.
const SoakDurationEnv = "KITH_SOAK_DURATION"

// SoakDuration returns $KITH_SOAK_DURATION (default 30 s) and fails the test
// when it does not parse.
func SoakDuration(t testing.TB) time.Duration {
	t.Helper()
	s := os.Getenv(SoakDurationEnv)
	if s == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 30s or 30m", SoakDurationEnv, s)
	}
	return d
}

// Sample is one reading of the process's resources.
type Sample struct {
	At         time.Duration // since the sampler started
	LiveHeap   float64       // bytes of heap live at the last GC (/gc/heap/live:bytes)
	HeapObj    float64       // bytes in heap objects, live or not yet swept (/memory/classes/heap/objects:bytes)
	Goroutines float64       // /sched/goroutines:goroutines
	Extra      float64       // what the sampler's extra function returned (e.g. a peerstore size)
	// Retained is /gc/heap/live:bytes read right after forced GCs
	// (Retained), when the sampler was started with RetainedHeap (else 0). LiveHeap, read
	// at the last GC the pacer started, also counts what the program
	// allocated while that GC marked, which swings with load; Retained
	// is what the program holds on to, the figure a leak shows in.
	Retained float64
}

// SamplerOption changes what a Sampler reads.
type SamplerOption func(*Sampler)

// RetainedHeap makes each sample read the heap live after forced GCs as
// Retained (the func Retained). Two GCs every few seconds cost a program
// whose pacer collects several times a second next to nothing.
func RetainedHeap() SamplerOption { return func(s *Sampler) { s.retained = true } }

// Sampler reads runtime/metrics every interval until Stop.
type Sampler struct {
	start    time.Time
	extra    func() float64
	retained bool
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	all      []Sample
}

// StartSampler samples now and then every interval; extra, if not nil, is
// called for each sample's Extra.
func StartSampler(interval time.Duration, extra func() float64, opts ...SamplerOption) *Sampler {
	s := &Sampler{start: time.Now(), extra: extra, stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.take()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				s.take()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

var sampleNames = []string{"/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes", "/sched/goroutines:goroutines"}

func (s *Sampler) take() {
	ms := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		ms[i].Name = n
	}
	metrics.Read(ms)
	v := func(i int) float64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return float64(ms[i].Value.Uint64())
		}
		return math.NaN()
	}
	x := Sample{At: time.Since(s.start), LiveHeap: v(0), HeapObj: v(1), Goroutines: v(2)}
	if x.Goroutines != x.Goroutines { // not in this Go: count them
		x.Goroutines = float64(runtime.NumGoroutine())
	}
	if s.extra != nil {
		x.Extra = s.extra()
	}
	if s.retained {
		x.Retained = Retained()
	}
	s.mu.Lock()
	s.all = append(s.all, x)
	s.mu.Unlock()
}

// Retained forces two GCs and returns the bytes of heap live after them
// (/gc/heap/live:bytes): what the program holds on to.
func Retained() float64 {
	runtime.GC() // runs the finalizers of what it found unreachable
	runtime.GC() // frees what they let go
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	if live[0].Value.Kind() != metrics.KindUint64 {
		return math.NaN()
	}
	return float64(live[0].Value.Uint64())
}

// Stop stops sampling (safe to call more than once).
func (s *Sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Samples returns a copy of the samples taken so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// Trend is the least-squares line through a series of samples.
type Trend struct {
	N        int
	Mean     float64
	Slope    float64 // per hour
	SlopeErr float64 // standard error of Slope, per hour
}

// PctPerHour is the slope as a percentage of the mean per hour.
func (tr Trend) PctPerHour() float64 { return 100 * tr.Slope / tr.Mean }

// PctErrPerHour is the slope's standard error as a percentage of the mean
// per hour.
func (tr Trend) PctErrPerHour() float64 { return 100 * tr.SlopeErr / tr.Mean }

// Growing says whether the series shows growth above limitPct percent of
// its mean per hour: whether the slope exceeds the limit by more than two
// standard errors. A short series has wide errors, so it catches gross
// leaks only; a long one (30 min, 24 h) tightens to the limit itself.
func (tr Trend) Growing(limitPct float64) bool {
	return tr.PctPerHour()-2*tr.PctErrPerHour() > limitPct
}

func (tr Trend) String() string {
	return fmt.Sprintf("mean %.0f, slope %+.2f ± %.2f %%/h over %d samples", tr.Mean, tr.PctPerHour(), tr.PctErrPerHour(), tr.N)
}

// Fit fits a line through f of each sample at or after from.
func Fit(samples []Sample, from time.Duration, f func(Sample) float64) Trend {
	var xs, ys []float64
	for _, s := range samples {
		if s.At >= from {
			xs = append(xs, s.At.Hours())
			ys = append(ys, f(s))
		}
	}
	n := float64(len(xs))
	tr := Trend{N: len(xs)}
	if len(xs) < 3 {
		return tr
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	tr.Mean, tr.Slope = my, sxy/sxx
	var sse float64
	for i := range xs {
		r := ys[i] - (my + tr.Slope*(xs[i]-mx))
		sse += r * r
	}
	tr.SlopeErr = math.Sqrt(sse / (n - 2) / sxx)
	return tr
}

// Quantile is the nearest-rank q-quantile of lat (sorted in place).
func Quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return quantile(lat, q)
}

// Goal logs a speed figure against its goal from RELIABILITY.md: "goal met"
// or "GOAL MISSED". Speed is measured and reported, never a pass/fail in a
// timed test (a loaded machine would fail it); what was delivered, kept and
// in which order is what the soak tests assert.
func Goal(t testing.TB, met bool, format string, args ...any) {
	t.Helper()
	verdict := "goal met"
	if !met {
		verdict = "GOAL MISSED"
	}
	t.Logf("%s: "+format, append([]any{verdict}, args...)...)
}

// WriteSamples writes samples to path as CSV, one row a sample: seconds
// since the sampler started, then the figures in bytes or counts.
func WriteSamples(path string, samples []Sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"seconds", "live_heap", "retained_heap", "heap_objects", "goroutines", "extra"})
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range samples {
		w.Write([]string{num(s.At.Seconds()), num(s.LiveHeap), num(s.Retained), num(s.HeapObj), num(s.Goroutines), num(s.Extra)})
	}
	w.Flush()
	err = w.Error()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
