package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

const (
	exampleID  = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	exampleKey = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	// vectors.md 5.3 (b): the SMS demo payload.
	demoPayload = `{"PhoneNumberSet":["+8618511122266"],"SmsSdkAppId":"1400006666","TemplateId":"1234","SignName":"腾讯云","TemplateParamSet":["12345"],"SessionContext":"test"}`
)

type bundle struct {
	env  *sim.Env
	srv  *httptest.Server
	sim  *Sim
	hook *simtest.Receiver
}

func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	hook := &simtest.Receiver{Token: "tok", Ack: wire.CallbackOK}
	sb := simtest.New(t, hook)
	env, srv := sb.Env, sb.Srv
	if cfg.SecretID == "" {
		cfg.SecretID, cfg.SecretKey = exampleID, exampleKey
	}
	if len(cfg.SdkAppIDs) == 0 {
		cfg.SdkAppIDs = []string{"1400006666"}
	}
	cfg.Token = "tok"
	if cfg.ReportDelay == 0 {
		cfg.ReportDelay = 20 * time.Millisecond
	}
	s, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &bundle{env: env, srv: srv, sim: s, hook: hook}
}

// request builds a signed SendSms call the way the sms connector does.
func (b *bundle) request(t *testing.T, body, id, key string, ts int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/sandbox/tencent/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(wire.HeaderAction, wire.ActionSendSms)
	req.Header.Set(wire.HeaderVersion, wire.Version)
	req.Header.Set(wire.HeaderRegion, wire.DefaultRegion)
	wire.Signer{SecretID: id, SecretKey: key, Service: wire.Service, SignedHeaders: []string{"content-type", "host", "x-tc-action"}}.Sign(req, []byte(body), ts)
	return req
}

func do(t *testing.T, req *http.Request) wire.Result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.SendSmsResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Response.RequestID == "" {
		t.Fatalf("answer %d, %+v, %v: Tencent answers 200 with a RequestId", resp.StatusCode, out, err)
	}
	return out.Response
}

func accepted(env *sim.Env) []sim.Record {
	f := false
	return env.Records(sim.Filter{Vendor: Vendor, Op: OpSendSms, Failed: &f})
}

func TestDemoVectorAccepted(t *testing.T) {
	t.Parallel()
	// vectors.md 5.3 (b), EXAMPLE keys at 1551113065, as of that moment.
	b := setup(t, Config{SignNames: []string{"腾讯云"}, Templates: []string{"1234:1"}, Now: func() time.Time { return time.Unix(1551113065+30, 0) }})
	req := b.request(t, demoPayload, exampleID, exampleKey, 1551113065)
	res := do(t, req)
	if res.Error != nil || len(res.SendStatusSet) != 1 {
		t.Fatalf("result %+v", res)
	}
	st := res.SendStatusSet[0]
	if st.Code != "Ok" || st.PhoneNumber != "+8618511122266" || st.SerialNo == "" || st.SessionContext != "test" || st.IsoCode != "CN" || st.Fee != 1 {
		t.Fatalf("status %+v", st)
	}
	recs := accepted(b.env)
	var rec SendRecord
	if len(recs) != 1 || recs[0].To != "+8618511122266" || json.Unmarshal(recs[0].Data, &rec) != nil ||
		rec.SignatureMethod != "TC3-HMAC-SHA256" || rec.SerialNo != st.SerialNo || rec.TemplateParamSet[0] != "12345" {
		t.Fatalf("records %+v", recs)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, body, id, key string
		ts                  int64
		mut                 func(*http.Request)
		code                string
	}{
		{"bad signature", demoPayload, exampleID, "wrong", now, nil, "AuthFailure.SignatureFailure"},
		{"expired", demoPayload, exampleID, exampleKey, now - 301, nil, "AuthFailure.SignatureExpire"},
		{"unknown secret id", demoPayload, "AKIDnobody", exampleKey, now, nil, "AuthFailure.SecretIdNotFound"},
		{"charset added after signing", demoPayload, exampleID, exampleKey, now, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		}, "AuthFailure.SignatureFailure"},
		{"no authorization", demoPayload, exampleID, exampleKey, now, func(r *http.Request) { r.Header.Del("Authorization") }, "AuthFailure.InvalidAuthorization"},
		{"wrong version", demoPayload, exampleID, exampleKey, now, func(r *http.Request) { r.Header.Set(wire.HeaderVersion, "2019-07-11") }, "NoSuchVersion"},
		{"no region", demoPayload, exampleID, exampleKey, now, func(r *http.Request) { r.Header.Del(wire.HeaderRegion) }, "UnsupportedRegion"},
		{"unknown app", strings.Replace(demoPayload, "1400006666", "1400000001", 1), exampleID, exampleKey, now, nil, "InvalidParameterValue.SdkAppIdNotExist"},
		{"unknown template", strings.Replace(demoPayload, `"1234"`, `"999"`, 1), exampleID, exampleKey, now, nil, "FailedOperation.TemplateIncorrectOrUnapproved"},
		{"parameter count", strings.Replace(demoPayload, `["12345"]`, `["1","2"]`, 1), exampleID, exampleKey, now, nil, "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"},
		{"unknown sign", strings.Replace(demoPayload, "腾讯云", "别家", 1), exampleID, exampleKey, now, nil, "FailedOperation.SignatureIncorrectOrUnapproved"},
		{"unknown field", strings.Replace(demoPayload, `"SessionContext"`, `"Session"`, 1), exampleID, exampleKey, now, nil, "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{SignNames: []string{"腾讯云"}, Templates: []string{"1234:1"}})
			req := b.request(t, tc.body, tc.id, tc.key, tc.ts)
			if tc.mut != nil {
				tc.mut(req)
			}
			res := do(t, req)
			if res.Error == nil || res.Error.Code != tc.code || res.Error.Message == "" || res.SendStatusSet != nil {
				t.Fatalf("result %+v, want error %s", res, tc.code)
			}
			if len(accepted(b.env)) != 0 {
				t.Fatal("rejected call recorded as accepted")
			}
		})
	}
}

func TestPerNumberResults(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	body := strings.Replace(demoPayload, `["+8618511122266"]`, `["+8618511122266","12345","13800138000"]`, 1)
	res := do(t, b.request(t, body, exampleID, exampleKey, time.Now().Unix()))
	if len(res.SendStatusSet) != 3 || res.SendStatusSet[0].Code != "Ok" || res.SendStatusSet[1].Code != "InvalidParameterValue.IncorrectPhoneNumber" ||
		res.SendStatusSet[2].Code != "Ok" || res.SendStatusSet[2].PhoneNumber != "+8613800138000" {
		t.Fatalf("set %+v", res.SendStatusSet)
	}
	if n := len(accepted(b.env)); n != 2 {
		t.Fatalf("%d accepted records", n)
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code      string
		perNumber bool
	}{
		{"LimitExceeded.PhoneNumberDailyLimit", true},
		{"RequestLimitExceeded", false},
		{"", false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			_ = b.env.SetFault("tencent SendSms", sim.Fault{ErrorRatio: 1, Code: tc.code})
			res := do(t, b.request(t, demoPayload, exampleID, exampleKey, time.Now().Unix()))
			want := tc.code
			if want == "" {
				want = "InternalError"
			}
			if tc.perNumber {
				if res.Error != nil || len(res.SendStatusSet) != 1 || res.SendStatusSet[0].Code != want || res.SendStatusSet[0].SerialNo != "" {
					t.Fatalf("result %+v", res)
				}
			} else if res.Error == nil || res.Error.Code != want {
				t.Fatalf("result %+v", res)
			}
			if len(accepted(b.env)) != 0 {
				t.Fatal("injected fault recorded as accepted")
			}
		})
	}
}

func TestStatusCallback(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{ReportDelay: 50 * time.Millisecond, Retry: []time.Duration{10 * time.Millisecond}, Undeliverable: []string{"+8613800138000"}})
	b.hook.FailNext(1)
	body := strings.Replace(demoPayload, `["+8618511122266"]`, `["+8618511122266","+8613800138000"]`, 1)
	res := do(t, b.request(t, body, exampleID, exampleKey, time.Now().Unix()))
	simtest.WaitFor(t, "status callback", func() bool { return len(b.hook.Got()) == 1 })
	path, raw, _ := strings.Cut(b.hook.Got()[0], " ")
	reps, err := wire.ParseStatus([]byte(raw))
	if path != "/hooks/sms/tencent/status" || err != nil || len(reps) != 2 {
		t.Fatalf("callback %s %s (%v)", path, raw, err)
	}
	for i, r := range reps {
		ok := r.Mobile == "18511122266"
		if r.Nationcode != "86" || r.Sid != res.SendStatusSet[i].SerialNo || (r.ReportStatus == wire.ReportSuccess) != ok {
			t.Errorf("receipt %+v", r)
		}
	}
}

func TestChannelPostsReply(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{ReplySign: "omnibus", Extend: "12"})
	c := sim.Population(1, 3)[0]
	if err := b.sim.Channel().Write(context.Background(), c, "可以开发票吗？"); err != nil {
		t.Fatal(err)
	}
	path, raw, _ := strings.Cut(b.hook.Got()[0], " ")
	r, err := wire.ParseReply([]byte(raw))
	if path != "/hooks/sms/tencent/reply" || err != nil || "+"+r.Nationcode+r.Mobile != c.Phone || r.Nationcode != "86" ||
		r.Text != "可以开发票吗？" || r.Sign != "omnibus" || r.Extend != "12" || r.Time == 0 {
		t.Fatalf("reply %s %+v (%v)", path, r, err)
	}
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+8613800138000": "+8613800138000", "13800138000": "+8613800138000", "+85291234567": "+85291234567",
		"+8612345678901": "", "12345": "", "+0123456789": "", "+86138001380001": ""} {
		if got, ok := E164(in); got != want || ok != (want != "") {
			t.Errorf("E164(%q) = %q %v", in, got, ok)
		}
	}
	for in, want := range map[string][2]string{"+8613800138000": {"86", "13800138000"}, "+12025550123": {"1", "2025550123"},
		"+85291234567": {"852", "91234567"}, "+447911123456": {"44", "7911123456"}, "+79161234567": {"7", "9161234567"}} {
		if cc, n := SplitE164(in); cc != want[0] || n != want[1] {
			t.Errorf("SplitE164(%q) = %s %s", in, cc, n)
		}
	}
}
