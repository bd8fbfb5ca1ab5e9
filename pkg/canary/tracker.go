package canary

import (
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// Result is what one call through a variant says about the variant.
type Result int

const (
	// Success: the vendor served the call.
	Success Result = iota
	// Failure: the vendor did not serve it (error, timeout, open breaker, throttling,
	// misconfiguration).
	Failure
	// Skip: the call says nothing about the variant (the caller gave up, or the request itself
	// was refused: an invalid number fails the same way on every variant).
	Skip
)

// ResultOf reads a pkg/resilience call's error: nil is Success; a cancelled call and a refusal
// (resilience outcome "permanent": the vendor refused this request) are Skip; anything else —
// errors, timeouts, rate limits, an open breaker, a full bulkhead — is Failure. A caller that
// knows better (a refusal that is the connector's misconfiguration) passes its own Result.
func ResultOf(err error) Result {
	if err == nil {
		return Success
	}
	var re *resilience.Error
	if errors.As(err, &re) {
		switch re.Outcome {
		case "canceled", "permanent":
			return Skip
		}
		return Failure
	}
	if bus.IsPermanent(err) {
		return Skip
	}
	return Failure
}

// latencyBounds are the upper bounds (ms) of the latency histogram that gives p95.
var latencyBounds = []float64{5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000}

type window struct {
	index    int64
	calls    int
	failures int
	sumMS    float64
	hist     [14]int // one per latencyBounds, then overflow
}

// tracker keeps a sliding window of counts per variant (not safe for concurrent use; Rollout
// holds its lock).
type tracker struct {
	width    time.Duration
	variants map[string][]window
	n        int
}

func newTracker(w time.Duration, buckets int) *tracker {
	return &tracker{width: w / time.Duration(buckets), n: buckets, variants: map[string][]window{}}
}

func (t *tracker) record(variant string, failed bool, latency time.Duration, now time.Time) {
	idx := now.UnixNano() / int64(t.width)
	ws := t.variants[variant]
	if ws == nil {
		ws = make([]window, t.n)
		for i := range ws {
			ws[i].index = -1
		}
		t.variants[variant] = ws
	}
	w := &ws[idx%int64(t.n)]
	if w.index != idx {
		*w = window{index: idx}
	}
	ms := float64(latency.Microseconds()) / 1000
	w.calls++
	if failed {
		w.failures++
	}
	w.sumMS += ms
	i := 0
	for i < len(latencyBounds) && ms > latencyBounds[i] {
		i++
	}
	w.hist[i]++
}

// reset forgets a variant's window (a new rollout starts the candidate afresh).
func (t *tracker) reset(variant string) { delete(t.variants, variant) }

// Stats are one variant's calls over the window.
type Stats struct {
	Variant  string  `json:"variant"`
	Calls    int     `json:"calls"`
	Failures int     `json:"failures"`
	Ratio    float64 `json:"failure_ratio"`
	MeanMS   float64 `json:"latency_mean_ms"`
	// P95MS is the upper bound of the histogram bucket holding the 95th percentile (10 000 ms
	// and beyond report 10 000).
	P95MS float64 `json:"latency_p95_ms"`
}

func (t *tracker) stats(variant string, now time.Time) Stats {
	idx := now.UnixNano() / int64(t.width)
	s := Stats{Variant: variant}
	var hist [14]int
	var sum float64
	for _, w := range t.variants[variant] {
		if w.index < 0 || w.index <= idx-int64(t.n) || w.index > idx {
			continue
		}
		s.Calls += w.calls
		s.Failures += w.failures
		sum += w.sumMS
		for i, n := range w.hist {
			hist[i] += n
		}
	}
	if s.Calls == 0 {
		return s
	}
	s.Ratio = float64(s.Failures) / float64(s.Calls)
	s.MeanMS = float64(int(sum/float64(s.Calls)*10+0.5)) / 10
	need, seen := (s.Calls*95+99)/100, 0
	for i, n := range hist {
		seen += n
		if seen >= need {
			s.P95MS = latencyBounds[min(i, len(latencyBounds)-1)]
			break
		}
	}
	return s
}

// MinExcessFailures is how many more failures than the baseline's ratio predicts the candidate
// must have made for a rollback: two unlucky failures in a small window (2 of 25 calls against a
// clean baseline is 8 %) are not evidence enough to take a pilot down.
const MinExcessFailures = 3

// breached applies the rollback rule to the candidate's and the baseline's windows: the
// candidate made at least minCalls calls, its failure ratio exceeds the baseline's by more than
// margin, and it failed at least MinExcessFailures more calls than the baseline's ratio predicts.
// A baseline with fewer than minCalls calls counts as failing none: too little baseline traffic
// must not shield a failing candidate.
func breached(cand, base Stats, margin float64, minCalls int) bool {
	if cand.Calls < minCalls {
		return false
	}
	baseRatio := 0.0
	if base.Calls >= minCalls {
		baseRatio = base.Ratio
	}
	excess := float64(cand.Failures) - baseRatio*float64(cand.Calls)
	return cand.Ratio-baseRatio > margin && excess >= MinExcessFailures
}
