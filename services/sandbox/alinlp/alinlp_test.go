package alinlp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

const (
	keyID  = "testid"
	secret = "testsecret"
)

func setup(t *testing.T) (*sim.Env, string) {
	t.Helper()
	sb := simtest.New(t, simtest.NewRecorder())
	if _, err := New(sb.Env, Config{AccessKeyID: keyID, AccessKeySecret: secret}); err != nil {
		t.Fatal(err)
	}
	return sb.Env, sb.Srv.URL + "/sandbox/" + Vendor + "/"
}

// call signs a GetSaChGeneral POST as the sentiment connector does; mutate changes the signed
// parameters.
func call(t *testing.T, u, text, key string, at time.Time, mutate func(url.Values)) (int, []byte) {
	t.Helper()
	p := wire.RPCParams(wire.ActionGetSaChGeneral, wire.NLPVersion, keyID, uuid.NewString(), at)
	p.Set("ServiceCode", wire.NLPServiceCode)
	p.Set("Text", text)
	p.Set("Signature", wire.SignV1(http.MethodPost, p, key))
	if mutate != nil {
		mutate(p)
	}
	resp, err := http.Post(u, "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(p.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func TestGetSaChGeneral(t *testing.T) {
	t.Parallel()
	env, u := setup(t)
	status, raw := call(t, u, "再不给我退款我就打12315投诉你们！", secret, time.Now(), nil)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, raw)
	}
	_, r, err := wire.ParseGetSaChGeneral(raw)
	if err != nil || r.Sentiment != wire.SaNegative || r.NegativeProb <= r.PositiveProb {
		t.Fatalf("%+v %v (%s)", r, err, raw)
	}
	var outer map[string]any
	if json.Unmarshal(raw, &outer) != nil || outer["Data"] == nil {
		t.Fatalf("Data must be a JSON string: %s", raw)
	}
	if _, ok := outer["Data"].(string); !ok {
		t.Fatalf("Data must be a JSON string: %s", raw)
	}
	if recs := env.Records(sim.Filter{Vendor: Vendor}); len(recs) != 1 || recs[0].Error != "" {
		t.Fatalf("records %+v", recs)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	_, u := setup(t)
	tests := []struct {
		name   string
		key    string
		at     time.Time
		mutate func(url.Values)
		status int
		code   string
	}{
		{"forged signature", "wrong", time.Now(), nil, 400, "SignatureDoesNotMatch"},
		{"unknown key", secret, time.Now(), func(p url.Values) { p.Set("AccessKeyId", "nobody") }, 404, "InvalidAccessKeyId.NotFound"},
		{"expired", secret, time.Now().Add(-time.Hour), nil, 400, "InvalidTimeStamp.Expired"},
		{"text changed after signing", secret, time.Now(), func(p url.Values) { p.Set("Text", "很好") }, 400, "SignatureDoesNotMatch"},
		{"no signature", secret, time.Now(), func(p url.Values) { p.Del("Signature") }, 400, "IncompleteSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, raw := call(t, u, "服务太差了", tt.key, tt.at, tt.mutate)
			var e wire.ErrorResponse
			if status != tt.status || json.Unmarshal(raw, &e) != nil || e.Code != tt.code {
				t.Fatalf("%d %s, want %d %s", status, raw, tt.status, tt.code)
			}
		})
	}
	t.Run("nonce reused", func(t *testing.T) {
		t.Parallel()
		p := wire.RPCParams(wire.ActionGetSaChGeneral, wire.NLPVersion, keyID, "fixed-nonce", time.Now())
		p.Set("ServiceCode", wire.NLPServiceCode)
		p.Set("Text", "好")
		p.Set("Signature", wire.SignV1(http.MethodPost, p, secret))
		for i, want := range []int{200, 400} {
			resp, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(p.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("call %d: %d, want %d", i, resp.StatusCode, want)
			}
		}
	})
}

func TestInjectedFault(t *testing.T) {
	t.Parallel()
	env, u := setup(t)
	if err := env.SetFault(Vendor+" *", sim.Fault{ErrorRatio: 1, Code: "ServiceUnavailable"}); err != nil {
		t.Fatal(err)
	}
	if status, raw := call(t, u, "好", secret, time.Now(), nil); status != 503 || !strings.Contains(string(raw), "ServiceUnavailable") {
		t.Fatalf("%d %s", status, raw)
	}
}
