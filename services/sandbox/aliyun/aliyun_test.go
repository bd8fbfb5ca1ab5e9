package aliyun

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

type bundle struct {
	env  *sim.Env
	srv  *httptest.Server
	sim  *Sim
	hook *simtest.Receiver
}

func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	hook := &simtest.Receiver{Token: "tok", Ack: wire.PushOK}
	sb := simtest.New(t, hook)
	env, srv := sb.Env, sb.Srv
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID, cfg.AccessKeySecret = "LTAIkey", "secret"
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

// v3Request builds a SendSms call as the current SDK (and the sms connector) does.
func (b *bundle) v3Request(t *testing.T, p wire.SendSms, key, secret string, at time.Time, nonce string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/sandbox/aliyun/?"+p.Query().Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(wire.HeaderAction, wire.ActionSendSms)
	req.Header.Set(wire.HeaderVersion, wire.Version)
	req.Header.Set(wire.HeaderDate, wire.FormatTimestamp(at))
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set("Accept", "application/json")
	wire.SignV3(req, nil, key, secret, "/")
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var sendOK = wire.SendSms{PhoneNumbers: "13800138000", SignName: "omnibus", TemplateCode: "SMS_000001",
	TemplateParam: `{"content":"您的包裹已发出"}`, OutID: "cmd-1"}

func accepted(env *sim.Env) []sim.Record {
	f := false
	return env.Records(sim.Filter{Vendor: Vendor, Op: OpSendSms, Failed: &f})
}

func TestV1VectorAccepted(t *testing.T) {
	t.Parallel()
	// vectors.md 4.1: the doc's SendSms example, signed with testId/testSecret at 2017-07-12T02:42:19Z.
	b := setup(t, Config{AccessKeyID: "testId", AccessKeySecret: "testSecret", SignNames: []string{"阿里云短信测试专用"},
		Templates: []string{"SMS_71390007:customer"}, Now: func() time.Time { return time.Date(2017, 7, 12, 2, 45, 0, 0, time.UTC) }})
	final := "/sandbox/aliyun/?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+final, nil)
	status, body := do(t, req)
	var resp wire.SendSmsResponse
	if err := xml.Unmarshal([]byte(body), &resp); status != 200 || err != nil || resp.Code != "OK" || resp.BizID == "" {
		t.Fatalf("V1 vector answered %d %s (%v)", status, body, err)
	}
	recs := accepted(b.env)
	if len(recs) != 1 || recs[0].To != "15300000001" || !strings.Contains(string(recs[0].Data), `"SignatureMethod":"HMAC-SHA1"`) {
		t.Fatalf("records %+v", recs)
	}
	// The same URL again: same nonce.
	req, _ = http.NewRequest(http.MethodGet, b.srv.URL+final, nil)
	if status, body := do(t, req); status != 400 || !strings.Contains(body, "<Code>SignatureNonceUsed</Code>") {
		t.Fatalf("replay answered %d %s", status, body)
	}
}

func TestV3Accepted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Templates: []string{"SMS_000001:content"}})
	status, body := do(t, b.v3Request(t, sendOK, "LTAIkey", "secret", time.Now(), uuid.NewString()))
	var resp wire.SendSmsResponse
	if err := json.Unmarshal([]byte(body), &resp); status != 200 || err != nil || resp.Code != "OK" || resp.Message != "OK" || resp.BizID == "" || resp.RequestID == "" {
		t.Fatalf("answered %d %s", status, body)
	}
	recs := accepted(b.env)
	if len(recs) != 1 || recs[0].To != "13800138000" {
		t.Fatalf("records %+v", recs)
	}
	var rec SendRecord
	_ = json.Unmarshal(recs[0].Data, &rec)
	if rec.SignatureMethod != wire.AlgorithmV3 || rec.TemplateParam["content"] != "您的包裹已发出" || rec.OutID != "cmd-1" || rec.BizID != resp.BizID {
		t.Fatalf("record %+v", rec)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tc := range []struct {
		name       string
		req        func(b *bundle) *http.Request
		status     int
		code, text string
	}{
		{"bad signature", func(b *bundle) *http.Request {
			return b.v3Request(t, sendOK, "LTAIkey", "wrong-secret", now, uuid.NewString())
		}, 400, "SignatureDoesNotMatch", "server string to sign is:ACS3-HMAC-SHA256\n"},
		{"tampered after signing", func(b *bundle) *http.Request {
			r := b.v3Request(t, sendOK, "LTAIkey", "secret", now, uuid.NewString())
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "13800138000", "13800138001", 1)
			return r
		}, 400, "SignatureDoesNotMatch", ""},
		{"unknown access key", func(b *bundle) *http.Request {
			return b.v3Request(t, sendOK, "LTAInobody", "secret", now, uuid.NewString())
		}, 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."},
		{"stale timestamp", func(b *bundle) *http.Request {
			return b.v3Request(t, sendOK, "LTAIkey", "secret", now.Add(-16*time.Minute), uuid.NewString())
		}, 400, "InvalidTimeStamp.Expired", ""},
		{"unsigned", func(b *bundle) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/sandbox/aliyun/?"+sendOK.Query().Encode(), nil)
			return r
		}, 400, "IncompleteSignature", ""},
		{"illegal number", func(b *bundle) *http.Request {
			p := sendOK
			p.PhoneNumbers = "1380013800"
			return b.v3Request(t, p, "LTAIkey", "secret", now, uuid.NewString())
		}, 200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"},
		{"unknown template", func(b *bundle) *http.Request {
			p := sendOK
			p.TemplateCode = "SMS_999"
			return b.v3Request(t, p, "LTAIkey", "secret", now, uuid.NewString())
		}, 200, "isv.SMS_TEMPLATE_ILLEGAL", ""},
		{"missing parameter", func(b *bundle) *http.Request {
			p := sendOK
			p.TemplateParam = `{"other":"x"}`
			return b.v3Request(t, p, "LTAIkey", "secret", now, uuid.NewString())
		}, 200, "isv.TEMPLATE_MISSING_PARAMETERS", ""},
		{"non-string parameter", func(b *bundle) *http.Request {
			p := sendOK
			p.TemplateParam = `{"content":1}`
			return b.v3Request(t, p, "LTAIkey", "secret", now, uuid.NewString())
		}, 200, "isv.INVALID_JSON_PARAM", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Templates: []string{"SMS_000001:content"}})
			status, body := do(t, tc.req(b))
			var resp struct{ Code, Message, RequestId, HostId string }
			if err := json.Unmarshal([]byte(body), &resp); err != nil || status != tc.status || resp.Code != tc.code || resp.RequestId == "" {
				t.Fatalf("answered %d %s, want %d %s", status, body, tc.status, tc.code)
			}
			if !strings.Contains(resp.Message, tc.text) {
				t.Errorf("message %q lacks %q", resp.Message, tc.text)
			}
			if tc.status != 200 && resp.HostId != wire.Host {
				t.Errorf("gateway error without HostId: %s", body)
			}
			if n := len(accepted(b.env)); n != 0 {
				t.Fatalf("%d accepted records", n)
			}
			f := true
			if n := len(b.env.Records(sim.Filter{Vendor: Vendor, Failed: &f})); n != 1 {
				t.Fatalf("%d rejected records, want 1", n)
			}
		})
	}
}

func TestNonceReused(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	nonce := uuid.NewString()
	if status, body := do(t, b.v3Request(t, sendOK, "LTAIkey", "secret", time.Now(), nonce)); status != 200 {
		t.Fatalf("first call %d %s", status, body)
	}
	status, body := do(t, b.v3Request(t, sendOK, "LTAIkey", "secret", time.Now(), nonce))
	if status != 400 || !strings.Contains(body, `"Code":"SignatureNonceUsed"`) {
		t.Fatalf("reused nonce answered %d %s", status, body)
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   string
		status int
		want   string
	}{
		{"isv.BUSINESS_LIMIT_CONTROL", 200, `"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1"`},
		{"Throttling.User", 400, `"Code":"Throttling.User"`},
		{"", 500, `"Code":"InternalError"`},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			if err := b.env.SetFault("aliyun SendSms", sim.Fault{ErrorRatio: 1, Code: tc.code}); err != nil {
				t.Fatal(err)
			}
			status, body := do(t, b.v3Request(t, sendOK, "LTAIkey", "secret", time.Now(), uuid.NewString()))
			if status != tc.status || !strings.Contains(body, tc.want) || strings.Contains(body, "BizId") {
				t.Fatalf("answered %d %s", status, body)
			}
			if len(accepted(b.env)) != 0 || b.env.Stats()["aliyun SendSms"].Injected != 1 {
				t.Fatal("injected fault recorded as accepted")
			}
		})
	}
}

func TestReceiptsPushedInBatchesAndRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Retry: []time.Duration{10 * time.Millisecond}, ReportDelay: 50 * time.Millisecond, Undeliverable: []string{"13900139000"}})
	b.hook.FailNext(1) // the first push is refused: Aliyun pushes the batch again
	p := sendOK
	p.PhoneNumbers = "13800138000,+8613900139000"
	if status, body := do(t, b.v3Request(t, p, "LTAIkey", "secret", time.Now(), uuid.NewString())); status != 200 {
		t.Fatalf("send %d %s", status, body)
	}
	simtest.WaitFor(t, "receipt push", func() bool { return len(b.hook.Got()) == 1 })
	path, body, _ := strings.Cut(b.hook.Got()[0], " ")
	if path != "/hooks/sms/aliyun/report" {
		t.Fatalf("pushed to %s", path)
	}
	reps, err := wire.ParseSmsReport([]byte(body))
	if err != nil || len(reps) != 2 {
		t.Fatalf("one batch of two receipts, got %s (%v)", body, err)
	}
	for _, r := range reps {
		want := r.PhoneNumber == "13800138000"
		if r.Success != want || r.BizID == "" || r.OutID != "cmd-1" {
			t.Errorf("receipt %+v", r)
		}
	}
}

func TestReceiptsRepeated(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Repeat: 1, ReportDelay: 10 * time.Millisecond})
	if status, _ := do(t, b.v3Request(t, sendOK, "LTAIkey", "secret", time.Now(), uuid.NewString())); status != 200 {
		t.Fatal(status)
	}
	// The repeat goes into a later push, or into the same one if that has not left yet.
	var reps []wire.SmsReport
	simtest.WaitFor(t, "the repeated receipt", func() bool {
		reps = nil
		for _, g := range b.hook.Got() {
			_, body, _ := strings.Cut(g, " ")
			items, err := wire.ParseSmsReport([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			reps = append(reps, items...)
		}
		return len(reps) == 2
	})
	if reps[0] != reps[1] {
		t.Fatalf("repeat differs:\n%+v\n%+v", reps[0], reps[1])
	}
}

func TestChannelPushesUplink(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{DestCode: "01", UpSignName: "omnibus"})
	ch := b.sim.Channel()
	if ch.Name() != "sms" {
		t.Fatalf("name %s", ch.Name())
	}
	c := sim.Population(1, 7)[0]
	if err := ch.Write(context.Background(), c, "我的快递到哪了？"); err != nil {
		t.Fatal(err)
	}
	got := b.hook.Got()
	if len(got) != 1 {
		t.Fatalf("pushes %v", got)
	}
	path, body, _ := strings.Cut(got[0], " ")
	ups, err := wire.ParseSmsUp([]byte(body))
	if path != "/hooks/sms/aliyun/up" || err != nil || len(ups) != 1 {
		t.Fatalf("push %s %s (%v)", path, body, err)
	}
	if u := ups[0]; "+86"+u.PhoneNumber != c.Phone || u.Content != "我的快递到哪了？" || u.DestCode != "01" || u.SignName != "omnibus" {
		t.Fatalf("uplink %+v for %s", u, c.Phone)
	}
	// A refused push is the connector's answer.
	b.hook.FailNext(1)
	if err := ch.Write(context.Background(), c, "again"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("refused push: %v", err)
	}
}

func TestVendorNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"13800138000": "13800138000", "+8613800138000": "13800138000", "008613800138000": "13800138000",
		"8613800138000": "13800138000", "85291234567": "85291234567", "+85291234567": "85291234567",
		"1380013800": "", "12800138000": "", "+12025550123": "12025550123", "0012025550123": "12025550123", "12025550123": "", "+86123": "", "abc": "", "": "", "0123456789": "",
	} {
		got, ok := VendorNumber(in)
		if got != want || ok != (want != "") {
			t.Errorf("VendorNumber(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}
