package sentiment

import (
	"strings"
	"testing"
)

// baseline is the least a lexicon scorer can do: lower-case, split on spaces, one map lookup per
// word. BenchmarkAnalyze runs it on the same messages so the analyser's figure reads as a ratio
// to it, whatever the machine.
func baseline(lex map[string]float64, text string) float64 {
	sum := 0.0
	for _, w := range strings.Fields(strings.ToLower(text)) {
		sum += lex[w]
	}
	return sum
}

// BenchmarkAnalyze scores every message of the labelled set, reporting messages per second.
// Run on one core: go test -run '^$' -bench BenchmarkAnalyze -cpu 1 ./sentiment
func BenchmarkAnalyze(b *testing.B) {
	samples := loadLabelled(b)
	texts := make([]string, len(samples))
	for i, s := range samples {
		texts[i] = s.text
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)*float64(len(texts))/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(b.Elapsed().Seconds()*1e9/(float64(b.N)*float64(len(texts))), "ns/msg")
	}

	b.Run("analyzer", func(b *testing.B) {
		a := defaultAnalyzer()
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range texts {
				_ = a.Analyze(t)
			}
		}
		report(b)
	})
	b.Run("baseline", func(b *testing.B) {
		lex := map[string]float64{}
		for _, e := range DefaultLexicon() {
			lex[strings.ToLower(e.Term)] = e.Value
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range texts {
				_ = baseline(lex, t)
			}
		}
		report(b)
	})
}
