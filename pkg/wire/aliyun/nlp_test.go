package aliyun

import (
	"errors"
	"testing"
	"time"
)

// The GetSaChGeneral vector, SELF-COMPUTED with Python's hashlib/hmac/urllib from the V1
// algorithm of vendors/README.md §4.2 (POST, key testid / testsecret).
const (
	saNonce     = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
	saSignature = "5qQJ2Hq64Y5TZ+RBKeGjZUcCyPs="
)

func TestGetSaChGeneralSignature(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 10, 15, 0, 0, time.UTC)
	p := RPCParams(ActionGetSaChGeneral, NLPVersion, "testid", saNonce, at)
	p.Set("ServiceCode", NLPServiceCode)
	p.Set("Text", "快递三天都没更新，我要投诉！！")
	if got := SignV1("POST", p, "testsecret"); got != saSignature {
		t.Fatalf("signature %s, want %s", got, saSignature)
	}
	p.Set("Signature", saSignature)
	secret := func(id string) (string, bool) { return "testsecret", id == "testid" }
	if _, err := VerifyV1("POST", p, secret); err != nil {
		t.Fatal(err)
	}
	p.Set("Text", "快递三天都没更新")
	if _, err := VerifyV1("POST", p, secret); !errors.Is(err, ErrSignature) {
		t.Fatalf("changed text: %v", err)
	}
}

func TestParseGetSaChGeneral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    SaResult
		wantErr error
	}{
		{"documented", `{"RequestId":"r1","Data":"{\"result\":{\"positive_prob\":0.9963,\"sentiment\":\"正面\",\"negative_prob\":0.0036},\"success\":true}"}`,
			SaResult{PositiveProb: 0.9963, Sentiment: SaPositive, NegativeProb: 0.0036}, nil},
		{"negative", `{"RequestId":"r2","Data":"{\"result\":{\"positive_prob\":0.01,\"sentiment\":\"负面\",\"negative_prob\":0.99},\"success\":true}"}`,
			SaResult{PositiveProb: 0.01, Sentiment: SaNegative, NegativeProb: 0.99}, nil},
		{"data not a string", `{"RequestId":"r","Data":{"result":{}}}`, SaResult{}, ErrMalformedResponse},
		{"no data", `{"RequestId":"r"}`, SaResult{}, ErrMalformedResponse},
		{"not success", `{"Data":"{\"result\":{\"sentiment\":\"正面\"},\"success\":false}"}`, SaResult{}, ErrMalformedResponse},
		{"english label", `{"Data":"{\"result\":{\"sentiment\":\"positive\"},\"success\":true}"}`, SaResult{}, ErrMalformedResponse},
		{"negative probability", `{"Data":"{\"result\":{\"sentiment\":\"中性\",\"negative_prob\":-0.1},\"success\":true}"}`, SaResult{}, ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got, err := ParseGetSaChGeneral([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseGetSaChGeneral: the decoder never panics, and what it accepts is a documented label
// with probabilities in [0, 1].
func FuzzParseGetSaChGeneral(f *testing.F) {
	f.Add([]byte(`{"RequestId":"r1","Data":"{\"result\":{\"positive_prob\":0.9963,\"sentiment\":\"正面\",\"negative_prob\":0.0036},\"success\":true}"}`))
	f.Add([]byte(`{"RequestId":"r","Data":"{\"result\":null,\"success\":true}"}`))
	f.Add([]byte(`{"Code":"UserStatusInvalid","Message":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, r, err := ParseGetSaChGeneral(body)
		if err != nil {
			return
		}
		if r.Sentiment != SaPositive && r.Sentiment != SaNegative && r.Sentiment != SaNeutral {
			t.Fatalf("accepted label %q", r.Sentiment)
		}
		if !(r.PositiveProb >= 0 && r.PositiveProb <= 1 && r.NegativeProb >= 0 && r.NegativeProb <= 1) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
