package tencentnlp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

const (
	keyID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	key   = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
)

func setup(t *testing.T) (*sim.Env, string) {
	t.Helper()
	sb := simtest.New(t, simtest.NewRecorder())
	if _, err := New(sb.Env, Config{SecretID: keyID, SecretKey: key}); err != nil {
		t.Fatal(err)
	}
	return sb.Env, sb.Srv.URL + "/sandbox/" + Vendor + "/"
}

// call signs an AnalyzeSentiment request as the sentiment connector does and returns the
// decoded answer.
func call(t *testing.T, url, text, id, secret string, ts time.Time, mutate func(*http.Request)) wire.SentimentResult {
	t.Helper()
	body, _ := json.Marshal(wire.AnalyzeSentimentRequest{Text: text})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(wire.HeaderAction, wire.ActionAnalyzeSentiment)
	req.Header.Set(wire.HeaderVersion, wire.NLPVersion)
	req.Header.Set(wire.HeaderRegion, "ap-guangzhou")
	wire.Signer{SecretID: id, SecretKey: secret, Service: wire.NLPService}.Sign(req, body, ts.Unix())
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: API 3.0 answers 200", resp.StatusCode)
	}
	r, err := wire.ParseAnalyzeSentiment(raw)
	if err != nil || r.RequestID == "" {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return r
}

func TestAnalyzeSentiment(t *testing.T) {
	t.Parallel()
	env, url := setup(t)
	r := call(t, url, "快递三天都没更新，我要投诉！！", keyID, key, time.Now(), nil)
	if r.Error != nil || r.Sentiment != wire.SentimentNegative || r.Negative < r.Positive || r.Negative < r.Neutral {
		t.Fatalf("%+v", r)
	}
	if sum := r.Positive + r.Neutral + r.Negative; sum < 0.999 || sum > 1.001 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	if again := call(t, url, "快递三天都没更新，我要投诉！！", keyID, key, time.Now(), nil); again.Negative != r.Negative {
		t.Fatalf("not deterministic: %v then %v", r.Negative, again.Negative)
	}
	if p := call(t, url, "谢谢，问题解决了，非常满意", keyID, key, time.Now(), nil); p.Sentiment != wire.SentimentPositive {
		t.Fatalf("%+v", p)
	}
	if recs := env.Records(sim.Filter{Vendor: Vendor}); len(recs) != 3 || recs[0].Error != "" {
		t.Fatalf("records %+v", recs)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	_, url := setup(t)
	long := string(bytes.Repeat([]byte("差"), 201))
	tests := []struct {
		name, text, id, secret string
		at                     time.Time
		mutate                 func(*http.Request)
		code                   string
	}{
		{"forged signature", "好", keyID, "wrong", time.Now(), nil, "AuthFailure.SignatureFailure"},
		{"unknown secret id", "好", "AKIDunknown", key, time.Now(), nil, "AuthFailure.SecretIdNotFound"},
		{"expired", "好", keyID, key, time.Now().Add(-10 * time.Minute), nil, "AuthFailure.SignatureExpire"},
		{"no authorization", "好", keyID, key, time.Now(), func(r *http.Request) { r.Header.Del("Authorization") }, "AuthFailure.InvalidAuthorization"},
		{"other action", "好", keyID, key, time.Now(), func(r *http.Request) { r.Header.Set(wire.HeaderAction, "SendSms") }, "InvalidAction"},
		{"other version", "好", keyID, key, time.Now(), func(r *http.Request) { r.Header.Set(wire.HeaderVersion, "2021-01-11") }, "NoSuchVersion"},
		{"empty text", "", keyID, key, time.Now(), nil, "InvalidParameterValue"},
		{"text over 200 characters", long, keyID, key, time.Now(), nil, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, url, tt.text, tt.id, tt.secret, tt.at, tt.mutate)
			if r.Error == nil || r.Error.Code != tt.code {
				t.Fatalf("got %+v, want %s", r, tt.code)
			}
		})
	}
}

func TestInjectedFault(t *testing.T) {
	t.Parallel()
	env, url := setup(t)
	if err := env.SetFault(Vendor+" "+OpAnalyzeSentiment, sim.Fault{ErrorRatio: 1, Code: "FailedOperation.ResourceBusy"}); err != nil {
		t.Fatal(err)
	}
	if r := call(t, url, "好", keyID, key, time.Now(), nil); r.Error == nil || r.Error.Code != "FailedOperation.ResourceBusy" {
		t.Fatalf("%+v", r)
	}
}
