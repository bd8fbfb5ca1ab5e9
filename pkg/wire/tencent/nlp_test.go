package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

// The AnalyzeSentiment vector, SELF-COMPUTED with Python's hashlib/hmac from the algorithm of
// vendors/README.md §5.2 (service nlp, the example key pair, 2025-12-07 10:15:00 UTC).
const (
	nlpPayload   = `{"Text":"快递三天都没更新，我要投诉！！"}`
	nlpTS        = int64(1765102500)
	nlpSignature = "5e0f40f5967b0573218ac109015d2275ca9a488ceec5c2db958ce25ebfbc32c1"
)

func TestAnalyzeSentimentSignature(t *testing.T) {
	t.Parallel()
	body, err := json.Marshal(AnalyzeSentimentRequest{Text: "快递三天都没更新，我要投诉！！"})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != nlpPayload {
		t.Fatalf("body %s, want %s", body, nlpPayload)
	}
	req, _ := http.NewRequest(http.MethodPost, "https://"+NLPHost+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderAction, ActionAnalyzeSentiment)
	req.Header.Set(HeaderVersion, NLPVersion)
	Signer{SecretID: exampleID, SecretKey: exampleKey, Service: NLPService}.Sign(req, body, nlpTS)
	want := "TC3-HMAC-SHA256 Credential=" + exampleID + "/2025-12-07/nlp/tc3_request, SignedHeaders=content-type;host, Signature=" + nlpSignature
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization\n got %s\nwant %s", got, want)
	}
	req.Host = NLPHost
	if _, err := Verify(req, body, NLPService, exampleSecret, time.Unix(nlpTS, 0), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Signed for sms, verified as nlp: the credential scope differs.
	if _, err := Verify(req, body, Service, exampleSecret, time.Unix(nlpTS, 0), 5*time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("sms scope: %v", err)
	}
}

func TestParseAnalyzeSentiment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    SentimentResult
		wantErr error
	}{
		{"negative", `{"Response":{"Positive":0.02,"Neutral":0.03,"Negative":0.95,"Sentiment":"negative","RequestId":"r1"}}`,
			SentimentResult{Positive: 0.02, Neutral: 0.03, Negative: 0.95, Sentiment: "negative", RequestID: "r1"}, nil},
		{"api error", `{"Response":{"Error":{"Code":"FailedOperation.ResourceBusy","Message":"busy"},"RequestId":"r2"}}`,
			SentimentResult{Error: &Error{Code: "FailedOperation.ResourceBusy", Message: "busy"}, RequestID: "r2"}, nil},
		{"no envelope", `{"Sentiment":"negative"}`, SentimentResult{}, ErrMalformedResponse},
		{"unknown label", `{"Response":{"Sentiment":"angry","RequestId":"r"}}`, SentimentResult{}, ErrMalformedResponse},
		{"probability above 1", `{"Response":{"Positive":1.5,"Sentiment":"positive"}}`, SentimentResult{}, ErrMalformedResponse},
		{"error without code", `{"Response":{"Error":{"Message":"x"}}}`, SentimentResult{}, ErrMalformedResponse},
		{"not json", `<html>`, SentimentResult{}, ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAnalyzeSentiment([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(tt.want)
				if !bytes.Equal(a, b) {
					t.Fatalf("got %s, want %s", a, b)
				}
			}
		})
	}
}

// FuzzParseAnalyzeSentiment: the decoder never panics, and what it accepts without an API error
// is a documented label with probabilities in [0, 1] that survives a round trip.
func FuzzParseAnalyzeSentiment(f *testing.F) {
	f.Add([]byte(`{"Response":{"Positive":0.02,"Neutral":0.03,"Negative":0.95,"Sentiment":"negative","RequestId":"r1"}}`))
	f.Add([]byte(`{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"x"},"RequestId":"r"}}`))
	f.Add([]byte(`{"Response":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseAnalyzeSentiment(body)
		if err != nil || r.Error != nil {
			return
		}
		if r.Sentiment != SentimentPositive && r.Sentiment != SentimentNeutral && r.Sentiment != SentimentNegative {
			t.Fatalf("accepted label %q", r.Sentiment)
		}
		for _, p := range []float64{r.Positive, r.Neutral, r.Negative} {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("accepted probability %v", p)
			}
		}
		again, _ := json.Marshal(AnalyzeSentimentResponse{Response: r})
		if r2, err := ParseAnalyzeSentiment(again); err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v", r2, err)
		}
	})
}
