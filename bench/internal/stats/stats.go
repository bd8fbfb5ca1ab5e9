// Package stats summarises the load generators' latency samples.
package stats

import "slices"

// Dist is a latency distribution in milliseconds.
type Dist struct {
	Samples int     `json:"samples"`
	Mean    float64 `json:"mean"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

// Of summarises ms (nearest-rank percentiles); the zero Dist for no samples. ms is not changed.
func Of(ms []float64) *Dist {
	if len(ms) == 0 {
		return &Dist{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	var total float64
	for _, x := range s {
		total += x
	}
	return &Dist{Samples: len(s), Mean: total / float64(len(s)), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: s[len(s)-1]}
}
