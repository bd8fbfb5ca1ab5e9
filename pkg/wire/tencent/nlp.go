package tencent

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// NLP API constants (nlp 2019-04-08): the sentiment analysis the sentiment connector calls and
// the sandbox simulates. Requests are signed as every API 3.0 request (Signer with Service
// NLPService).
const (
	NLPHost                = "nlp.tencentcloudapi.com"
	NLPService             = "nlp"
	NLPVersion             = "2019-04-08"
	ActionAnalyzeSentiment = "AnalyzeSentiment"
	// MaxSentimentText is how many characters of Text AnalyzeSentiment reads.
	MaxSentimentText = 200
)

// Sentiment labels of AnalyzeSentiment.
const (
	SentimentPositive = "positive"
	SentimentNeutral  = "neutral"
	SentimentNegative = "negative"
)

// ErrMalformedResponse is wrapped by ParseAnalyzeSentiment for an answer that is not the
// documented shape.
var ErrMalformedResponse = errors.New("tencent: malformed response")

// AnalyzeSentimentRequest is AnalyzeSentiment's JSON body.
type AnalyzeSentimentRequest struct {
	Text string `json:"Text"`
}

// SentimentResult is the content of AnalyzeSentiment's "Response" envelope: the three class
// probabilities and the label, or Error.
type SentimentResult struct {
	Positive  float64 `json:"Positive"`
	Neutral   float64 `json:"Neutral"`
	Negative  float64 `json:"Negative"`
	Sentiment string  `json:"Sentiment"`
	Error     *Error  `json:"Error,omitempty"`
	RequestID string  `json:"RequestId"`
}

// AnalyzeSentimentResponse is {"Response":{...}}.
type AnalyzeSentimentResponse struct {
	Response SentimentResult `json:"Response"`
}

// ParseAnalyzeSentiment decodes an AnalyzeSentiment answer. An API error comes back as a
// result with Error set and a nil error; an answer without the envelope, with a Sentiment other
// than positive, neutral or negative, or with a probability outside [0, 1] fails with
// ErrMalformedResponse.
func ParseAnalyzeSentiment(body []byte) (SentimentResult, error) {
	var env struct {
		Response *SentimentResult `json:"Response"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return SentimentResult{}, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	if env.Response == nil {
		return SentimentResult{}, fmt.Errorf("%w: no Response", ErrMalformedResponse)
	}
	r := *env.Response
	if r.Error != nil {
		if r.Error.Code == "" {
			return r, fmt.Errorf("%w: Error without a Code", ErrMalformedResponse)
		}
		return r, nil
	}
	switch r.Sentiment {
	case SentimentPositive, SentimentNeutral, SentimentNegative:
	default:
		return r, fmt.Errorf("%w: Sentiment %q", ErrMalformedResponse, r.Sentiment)
	}
	for _, p := range []float64{r.Positive, r.Neutral, r.Negative} {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return r, fmt.Errorf("%w: probability %v outside [0, 1]", ErrMalformedResponse, p)
		}
	}
	return r, nil
}
