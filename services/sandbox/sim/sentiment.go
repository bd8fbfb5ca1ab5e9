package sim

import (
	"math"

	"github.com/omnibus-dev/omnibus/pkg/sentiment"
)

// Sentiment is how the simulated sentiment vendors (Tencent Cloud NLP, Aliyun NLP) judge a
// text: the built-in analyser's label, turned into the three class probabilities a vendor
// answers with (rounded to 4 decimals, summing to 1), the label's the largest. Deterministic:
// the same text always gets the same answer.
func Sentiment(text string) (label string, positive, neutral, negative float64) {
	r := sentiment.Analyze(text)
	main := round4(0.5 + 0.49*r.Confidence) // the label's probability, in [0.5, 0.99]
	rest := 1 - main
	lean := 0.5 + r.Score/2 // in [0, 1]: how the rest splits between positive and negative
	switch r.Label {
	case sentiment.Negative:
		negative, positive = main, round4(rest*lean)
		neutral = round4(1 - negative - positive)
	case sentiment.Positive:
		positive, negative = main, round4(rest*(1-lean))
		neutral = round4(1 - positive - negative)
	default:
		neutral, positive = main, round4(rest*lean)
		negative = round4(1 - neutral - positive)
	}
	return string(r.Label), positive, neutral, negative
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
