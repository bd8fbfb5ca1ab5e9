package sms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	tcwire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
	"github.com/omnibus-dev/omnibus/services/sms"
)

const token = "test-token-0123456789"

// Credentials shared by the connector and the simulators.
var (
	aliyunEnv = map[string]string{
		"SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "LTAItest", "SMS_ALIYUN_ACCESS_KEY_SECRET": "aliyun-secret",
		"SMS_ALIYUN_SIGN_NAME": "omnibus", "SMS_ALIYUN_TEMPLATE_CODE": "SMS_000001", "SMS_WEBHOOK_TOKEN": token,
		"SMS_SEND_BACKOFF": "100ms",
	}
	tencentEnv = map[string]string{
		"SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "AKIDtest", "SMS_TENCENT_SECRET_KEY": "tencent-key",
		"SMS_TENCENT_SDK_APP_ID": "1400000000", "SMS_TENCENT_SIGN_NAME": "omnibus", "SMS_TENCENT_TEMPLATE_ID": "100001",
		"SMS_WEBHOOK_TOKEN": token, "SMS_SEND_BACKOFF": "100ms",
	}
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// sandbox starts the simulators on their own server (hookBase "" → no pushes: the conformance
// suite runs the connector on servers of its own).
func sandbox(t testing.TB, hookBase string, mux *http.ServeMux) (*sim.Env, *aliyun.Sim, *tencent.Sim) {
	t.Helper()
	env := sim.NewEnv(mux, hookBase, nil, 0, quiet())
	a, err := aliyun.New(env, aliyun.Config{AccessKeyID: "LTAItest", AccessKeySecret: "aliyun-secret", SignNames: []string{"omnibus"},
		PendingSigns: []string{"omnibus-new"}, Templates: []string{"SMS_000001:content"}, Token: token, ReportDelay: 50 * time.Millisecond, Retry: []time.Duration{50 * time.Millisecond},
		Undeliverable: []string{"13900139000"}, UpSignName: "omnibus"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	tc, err := tencent.New(env, tencent.Config{SecretID: "AKIDtest", SecretKey: "tencent-key", SdkAppIDs: []string{"1400000000"},
		SignNames: []string{"omnibus"}, Templates: []string{"100001:1"}, Token: token, ReportDelay: 50 * time.Millisecond,
		Undeliverable: []string{"+8613900139000"}, ReplySign: "omnibus"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return env, a, tc
}

// ---- conformance ----

func aliyunUp(n int, tok string) *http.Request {
	body := fmt.Sprintf(`[{"phone_number":"138001380%02d","send_time":"2026-11-27 08:00:00","content":"你好 %d","sign_name":"omnibus","dest_code":"","sequence_id":%d}]`, n%100, n, 1000+n)
	return httptest.NewRequest(http.MethodPost, "/hooks/sms/aliyun/up?token="+tok, strings.NewReader(body))
}

func tencentReply(n int, tok string) *http.Request {
	body := fmt.Sprintf(`{"extend":"","mobile":"138001380%02d","nationcode":"86","sign":"omnibus","text":"你好 %d","time":%d}`, n%100, n, 1764201600+n)
	return httptest.NewRequest(http.MethodPost, "/hooks/sms/tencent/reply?token="+tok, strings.NewReader(body))
}

func sendCommand(t *testing.T, to, text string) event.Event {
	t.Helper()
	e, err := event.New(sms.TypeSend, "/desk", map[string]any{
		"channel": "sms", "to": map[string]string{"kind": "phone", "value": to},
		"message": map[string]any{"type": "text", "text": text}, "conversation_id": "0196f3a0-7b1c-7d2e-8f00-000000000001",
	}, event.WithPartitionKey("phone:"+to))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func recordOf[T any](t *testing.T, env *sim.Env, vendor string, match func(T) bool) (T, bool) {
	t.Helper()
	f := false
	for _, r := range env.Records(sim.Filter{Vendor: vendor, Op: "SendSms", Failed: &f}) {
		var v T
		if json.Unmarshal(r.Data, &v) == nil && match(v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// TestConformance runs the connector suite against each provider's simulator.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, p := range []struct {
		vars      map[string]string
		push      func(n int, token string) *http.Request
		delivered func(t *testing.T, env *sim.Env, id string) bool
	}{
		{aliyunEnv, aliyunUp, func(t *testing.T, env *sim.Env, id string) bool {
			rec, ok := recordOf(t, env, "aliyun", func(r aliyun.SendRecord) bool { return r.OutID == id })
			return ok && rec.TemplateParam["content"] == "您的包裹已发出" && rec.SignatureMethod == "ACS3-HMAC-SHA256"
		}},
		{tencentEnv, tencentReply, func(t *testing.T, env *sim.Env, id string) bool {
			rec, ok := recordOf(t, env, "tencent", func(r tencent.SendRecord) bool { return r.SessionContext == id })
			return ok && len(rec.TemplateParamSet) == 1 && rec.TemplateParamSet[0] == "您的包裹已发出" && rec.SignatureMethod == "TC3-HMAC-SHA256"
		}},
	} {
		provider := p.vars["SMS_PROVIDER"]
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			env, _, _ := sandbox(t, "", mux)
			connectortest.Run(t, connectortest.Harness{
				Spec: sms.Spec, Service: sms.Service(),
				Env:     merge(p.vars, map[string]string{"SMS_API_BASE": srv.URL + "/sandbox/" + provider}),
				Inbound: func(_ *testing.T, n int) *http.Request { return p.push(n, token) },
				Forged:  func(_ *testing.T, n int) *http.Request { return p.push(n, "forged-token-0123456") },
				Outbound: func(t *testing.T) (string, event.Event) {
					return sms.SubjectOut, sendCommand(t, "+8613800138000", "您的包裹已发出")
				},
				Delivered: func(t *testing.T, e event.Event) bool { return p.delivered(t, env, e.ID()) },
			})
		})
	}
}

// ---- the connector and the sandbox on one server, as in the all-in-one ----

type testBundle struct {
	bus     *bustest.Bundle
	srv     *httptest.Server
	env     *sim.Env
	aliyun  *aliyun.Sim
	tencent *tencent.Sim
}

func setup(t testing.TB, vars map[string]string) *testBundle {
	t.Helper()
	return setupSynced(t, "", vars)
}

// setupSynced is setup on a server with the given JetStream sync setting: "always" (every write
// fsynced, as deploy/nats/nats.conf and the all-in-one run, with NATS_ATOMIC_BATCHES on as they
// set it) or "" for the tests' default.
func setupSynced(t testing.TB, sync string, vars map[string]string) *testBundle {
	t.Helper()
	var b *bustest.Bundle
	if sync == "" {
		b = bustest.New(t, bus.WithLogger(quiet()))
	} else {
		b = bustest.NewSynced(t, sync, bus.WithLogger(quiet()), bus.WithAtomicBatches(sync == "always"))
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env, a, tc := sandbox(t, srv.URL+"/hooks", mux)
	vars = merge(vars, map[string]string{"SMS_API_BASE": srv.URL + "/sandbox/" + vars["SMS_PROVIDER"]})
	if vars["SMS_TENCENT_SECRET_ID"] != "" && vars["SMS_ALIYUN_ACCESS_KEY_ID"] != "" { // both: the other one's base too
		vars = merge(vars, map[string]string{"SMS_TENCENT_API_BASE": srv.URL + "/sandbox/tencent", "SMS_ALIYUN_API_BASE": srv.URL + "/sandbox/aliyun"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sms.Service().Run(ctx, service.Deps{Bus: b.Client, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("connector stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("connector did not stop")
		}
	})
	probe := "/hooks/sms/aliyun/up"
	if vars["SMS_PROVIDER"] == "tencent" {
		probe = "/hooks/sms/tencent/reply"
	}
	bustest.WaitFor(t, 10*time.Second, "webhooks mounted", func() bool {
		select {
		case err := <-done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		resp, err := http.Post(srv.URL+probe, "application/json", strings.NewReader("[]"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound
	})
	return &testBundle{bus: b, srv: srv, env: env, aliyun: a, tencent: tc}
}

func (tb *testBundle) post(t testing.TB, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(tb.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type statusData struct {
	MessageID       string `json:"message_id"`
	VendorMessageID string `json:"vendor_message_id"`
	Status          string `json:"status"`
	ErrorCode       string `json:"error_code"`
	Error           string `json:"error"`
	To              *struct{ Kind, Value string }
	ConversationID  string `json:"conversation_id"`
}

func (tb *testBundle) statuses(t *testing.T) []statusData {
	t.Helper()
	var out []statusData
	for _, e := range tb.bus.Events(t, bus.StreamIn, sms.SubjectStatus+".>") {
		var s statusData
		if err := json.Unmarshal(e.Data(), &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func (tb *testBundle) waitStatus(t *testing.T, messageID, status string) statusData {
	t.Helper()
	var found statusData
	bustest.WaitFor(t, 15*time.Second, status+" status of "+messageID, func() bool {
		for _, s := range tb.statuses(t) {
			if s.MessageID == messageID && s.Status == status {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func (tb *testBundle) publish(t *testing.T, e event.Event) {
	t.Helper()
	if err := tb.bus.Client.Publish(context.Background(), sms.SubjectOut, e); err != nil {
		t.Fatal(err)
	}
}

func TestSendThroughAliyun(t *testing.T) {
	t.Parallel()
	tb := setup(t, aliyunEnv)
	cmd := sendCommand(t, "13800138000", "您好，您的退款已到账")
	tb.publish(t, cmd)
	sent := tb.waitStatus(t, cmd.ID(), "sent")
	rec, ok := recordOf(t, tb.env, "aliyun", func(r aliyun.SendRecord) bool { return r.OutID == cmd.ID() })
	if !ok || rec.PhoneNumber != "13800138000" || rec.SignName != "omnibus" || rec.TemplateCode != "SMS_000001" ||
		rec.TemplateParam["content"] != "您好，您的退款已到账" || rec.SignatureMethod != "ACS3-HMAC-SHA256" || rec.AccessKeyID != "LTAItest" {
		t.Fatalf("sandbox record %+v (found %v)", rec, ok)
	}
	if sent.VendorMessageID != rec.BizID || sent.To == nil || sent.To.Value != "+8613800138000" || sent.ConversationID == "" {
		t.Fatalf("sent status %+v", sent)
	}
	// The simulator pushes the receipt; the connector ties it to the command through the state.
	delivered := tb.waitStatus(t, cmd.ID(), "delivered")
	if delivered.VendorMessageID != rec.BizID || delivered.To != nil {
		t.Fatalf("delivered status %+v", delivered)
	}
	tb.auditOf(t, "aliyun", cmd.ID(), "13800138000")
	events := tb.bus.Events(t, bus.StreamIn, sms.SubjectStatus+".>")
	for _, e := range events {
		if event.PartitionKey(e) != "phone:+8613800138000" || event.CorrelationID(e) != cmd.ID() {
			t.Errorf("status %s: partition %q correlation %q", e.ID(), event.PartitionKey(e), event.CorrelationID(e))
		}
	}
}

// auditOf waits for the audit record of the send command id (omni.audit.sms) and checks that it
// went through the vendor's send_sms route and masked the customer's number.
func (tb *testBundle) auditOf(t *testing.T, vendor, id, number string) audit.Record {
	t.Helper()
	var rec audit.Record
	bustest.WaitFor(t, 10*time.Second, "audit record of "+id, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamAudit, audit.Subject(sms.Channel)) {
			if err := json.Unmarshal(e.Data(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.CorrelationID == id {
				return true
			}
		}
		return false
	})
	if rec.Vendor != vendor || rec.Op != "send_sms" || rec.Outcome != audit.OutcomeOK || rec.Attempts != 1 || rec.Request == nil || rec.Response == nil {
		t.Fatalf("audit record %+v", rec)
	}
	if strings.Contains(rec.Request.Text, number) {
		t.Fatalf("audit record shows the number: %s", rec.Request.Text)
	}
	return rec
}

func TestSendThroughTencent(t *testing.T) {
	t.Parallel()
	tb := setup(t, tencentEnv)
	cmd := sendCommand(t, "+8613800138000", "您好，您的退款已到账")
	tb.publish(t, cmd)
	sent := tb.waitStatus(t, cmd.ID(), "sent")
	rec, ok := recordOf(t, tb.env, "tencent", func(r tencent.SendRecord) bool { return r.SessionContext == cmd.ID() })
	if !ok || rec.PhoneNumber != "+8613800138000" || rec.TemplateID != "100001" || rec.SmsSdkAppID != "1400000000" ||
		rec.TemplateParamSet[0] != "您好，您的退款已到账" || rec.SignatureMethod != "TC3-HMAC-SHA256" || rec.SecretID != "AKIDtest" {
		t.Fatalf("sandbox record %+v (found %v)", rec, ok)
	}
	if sent.VendorMessageID != rec.SerialNo {
		t.Fatalf("sent status %+v", sent)
	}
	if d := tb.waitStatus(t, cmd.ID(), "delivered"); d.VendorMessageID != rec.SerialNo {
		t.Fatalf("delivered %+v", d)
	}
	tb.auditOf(t, "tencent", cmd.ID(), "13800138000")
}

func TestUndeliveredReceipt(t *testing.T) {
	t.Parallel()
	for _, vars := range []map[string]string{aliyunEnv, tencentEnv} {
		t.Run(vars["SMS_PROVIDER"], func(t *testing.T) {
			t.Parallel()
			tb := setup(t, vars)
			cmd := sendCommand(t, "+8613900139000", "hi")
			tb.publish(t, cmd)
			failed := tb.waitStatus(t, cmd.ID(), "failed")
			if failed.ErrorCode != "MK:0001" || failed.Error == "" {
				t.Fatalf("failed receipt %+v", failed)
			}
		})
	}
}

func TestUplinkFromSimulatedCustomer(t *testing.T) {
	t.Parallel()
	for _, vars := range []map[string]string{aliyunEnv, tencentEnv} {
		t.Run(vars["SMS_PROVIDER"], func(t *testing.T) {
			t.Parallel()
			tb := setup(t, vars)
			ch := tb.aliyun.Channel()
			if vars["SMS_PROVIDER"] == "tencent" {
				ch = tb.tencent.Channel()
			}
			c := sim.Population(1, 11)[0]
			if err := ch.Write(context.Background(), c, "我想退货，订单号 20261127-0042"); err != nil {
				t.Fatal(err)
			}
			events := tb.bus.Events(t, bus.StreamIn, sms.SubjectIn+".>")
			if len(events) != 1 {
				t.Fatalf("%d events", len(events))
			}
			var d struct {
				Channel, Account string
				From             struct{ Kind, Value string }
				Message          struct{ Type, Text string }
			}
			_ = json.Unmarshal(events[0].Data(), &d)
			if d.Channel != "sms" || d.From.Kind != "phone" || d.From.Value != c.Phone || d.Message.Text != "我想退货，订单号 20261127-0042" ||
				d.Account != "omnibus" || event.PartitionKey(events[0]) != "phone:"+c.Phone {
				t.Fatalf("event %s", events[0].Data())
			}
		})
	}
}

func TestBadInputPublishesNothing(t *testing.T) {
	t.Parallel()
	big := `[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"` + strings.Repeat("x", 10<<20) + `","sequence_id":1}]`
	for _, tc := range []struct {
		name, provider, path, body string
		status                     int
		reason                     string
	}{
		{"malformed JSON", "aliyun", "/hooks/sms/aliyun/up?token=" + token, `[{"phone_number":`, 400, "malformed"},
		{"object instead of array", "aliyun", "/hooks/sms/aliyun/report?token=" + token, `{"biz_id":"1"}`, 400, "JSON array"},
		{"10 MB body", "aliyun", "/hooks/sms/aliyun/up?token=" + token, big, 413, "larger than"},
		{"wrong token", "aliyun", "/hooks/sms/aliyun/up?token=wrong-token-0123456789", `[]`, 401, "wrong token"},
		{"no token", "aliyun", "/hooks/sms/aliyun/report", `[]`, 401, "no token"},
		{"uplink without sequence_id", "aliyun", "/hooks/sms/aliyun/up?token=" + token, `[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"x"}]`, 400, "sequence_id"},
		{"uplink from a bad number", "aliyun", "/hooks/sms/aliyun/up?token=" + token, `[{"phone_number":"1380013","send_time":"2026-11-27 08:00:00","content":"x","sequence_id":1}]`, 400, "phone_number"},
		{"receipt without biz_id", "aliyun", "/hooks/sms/aliyun/report?token=" + token, `[{"phone_number":"13800138000","report_time":"2026-11-27 08:00:00","success":true}]`, 400, "biz_id"},
		{"one bad item fails the batch", "aliyun", "/hooks/sms/aliyun/up?token=" + token, `[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"ok","sequence_id":1},{"phone_number":"13800138000","send_time":"yesterday","content":"x","sequence_id":2}]`, 400, "item 1"},
		{"reply malformed", "tencent", "/hooks/sms/tencent/reply?token=" + token, `{"mobile":`, 400, "malformed"},
		{"reply without time", "tencent", "/hooks/sms/tencent/reply?token=" + token, `{"mobile":"13800138000","nationcode":"86","text":"x"}`, 400, "time"},
		{"status wrong token", "tencent", "/hooks/sms/tencent/status?token=nope", `[]`, 401, "wrong token"},
		{"status bad report_status", "tencent", "/hooks/sms/tencent/status?token=" + token, `[{"nationcode":"86","mobile":"13800138000","report_status":"DONE","sid":"1"}]`, 400, "report_status"},
		{"status 10 MB", "tencent", "/hooks/sms/tencent/status?token=" + token, "[" + strings.Repeat(" ", 10<<20) + "]", 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := aliyunEnv
			if tc.provider == "tencent" {
				vars = tencentEnv
			}
			tb := setup(t, vars)
			status, body := tb.post(t, tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.reason) || !strings.Contains(body, `"reason"`) {
				t.Fatalf("answered %d %.300s; want %d with reason %q", status, body, tc.status, tc.reason)
			}
			if strings.Contains(body, token) {
				t.Fatal("the answer echoes the token")
			}
			if n := tb.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
				t.Fatalf("bad input published %d events", n)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	vars := merge(aliyunEnv, map[string]string{"SMS_WEBHOOK_ALLOW_IPS": "192.0.2.0/24"})
	tb := setup(t, vars)
	status, body := tb.post(t, "/hooks/sms/aliyun/up?token="+token, `[]`)
	if status != 401 || !strings.Contains(body, "SMS_WEBHOOK_ALLOW_IPS") {
		t.Fatalf("push from outside the allow-list answered %d %s", status, body)
	}
	tb2 := setup(t, merge(aliyunEnv, map[string]string{"SMS_WEBHOOK_ALLOW_IPS": "127.0.0.1,::1", "SMS_WEBHOOK_TOKEN": ""}))
	up := `[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"hi","sign_name":"omnibus","sequence_id":5}]`
	if status, body := tb2.post(t, "/hooks/sms/aliyun/up", up); status != 200 {
		t.Fatalf("allowed push without token answered %d %s", status, body)
	}
}

func TestRepeatedReceiptBatchStoredOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t, aliyunEnv)
	item := func(biz, phone string) string {
		return fmt.Sprintf(`{"phone_number":"%s","send_time":"2026-11-27 08:00:00","report_time":"2026-11-27 08:00:05","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"%s","out_id":""}`, phone, biz)
	}
	// Aliyun may repeat items inside a push and re-push a whole batch.
	batch := "[" + item("900619746936498^0", "13800138000") + "," + item("900619746936498^0", "13800138000") + "," + item("900619746936499^0", "13800138001") + "]"
	for range 3 {
		status, body := tb.post(t, "/hooks/sms/aliyun/report?token="+token, batch)
		if status != 200 || strings.TrimSpace(body) != `{"code":0,"msg":"接收成功"}` {
			t.Fatalf("answered %d %s", status, body)
		}
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, ">"); n != 2 {
		t.Fatalf("two distinct receipts pushed three times stored %d times", n)
	}
	for _, s := range tb.statuses(t) {
		if s.Status != "delivered" || !strings.HasPrefix(s.MessageID, "aliyun:") {
			t.Errorf("receipt of an unknown send: %+v", s)
		}
	}
	// Tencent's status callback likewise.
	tt := setup(t, tencentEnv)
	st := `[{"user_receive_time":"2026-11-27 08:00:05","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","errmsg":"DELIVRD","description":"ok","sid":"2645:1"},` +
		`{"user_receive_time":"2026-11-27 08:00:05","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","errmsg":"DELIVRD","description":"ok","sid":"2645:1"}]`
	for range 2 {
		if status, body := tt.post(t, "/hooks/sms/tencent/status?token="+token, st); status != 200 || strings.TrimSpace(body) != `{"result":0,"errmsg":"OK"}` {
			t.Fatalf("answered %d %s", status, body)
		}
	}
	if n := tt.bus.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Fatalf("one receipt stored %d times", n)
	}
}

func TestThrottledSendRetriedNotFailed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vars      map[string]string
		key, code string
	}{
		{aliyunEnv, "aliyun SendSms", "isv.BUSINESS_LIMIT_CONTROL"},
		{tencentEnv, "tencent SendSms", "LimitExceeded.PhoneNumberDailyLimit"},
		{tencentEnv, "tencent SendSms", "RequestLimitExceeded"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tc.vars)
			if err := tb.env.SetFault(tc.key, sim.Fault{ErrorRatio: 1, Code: tc.code}); err != nil {
				t.Fatal(err)
			}
			cmd := sendCommand(t, "+8613800138000", "稍后重试")
			tb.publish(t, cmd)
			bustest.WaitFor(t, 15*time.Second, "a retry after the throttling answer", func() bool { return tb.env.Stats()[tc.key].Injected >= 2 })
			if s := tb.statuses(t); len(s) != 0 {
				t.Fatalf("a throttled send published %+v", s)
			}
			_ = tb.env.SetFault(tc.key, sim.Fault{})
			tb.waitStatus(t, cmd.ID(), "sent")
			for _, s := range tb.statuses(t) {
				if s.Status == "failed" {
					t.Fatalf("throttled send reported failed: %+v", s)
				}
			}
		})
	}
}

func TestThrottledTooLongFails(t *testing.T) {
	t.Parallel()
	tb := setup(t, merge(aliyunEnv, map[string]string{"SMS_SEND_MAX_DELIVER": "2"}))
	_ = tb.env.SetFault("aliyun SendSms", sim.Fault{ErrorRatio: 1, Code: "isv.BUSINESS_LIMIT_CONTROL"})
	cmd := sendCommand(t, "+8613800138000", "x")
	tb.publish(t, cmd)
	failed := tb.waitStatus(t, cmd.ID(), "failed")
	if failed.ErrorCode != "isv.BUSINESS_LIMIT_CONTROL" || !strings.Contains(failed.Error, "gave up after 2 attempts") {
		t.Fatalf("failed %+v", failed)
	}
}

func TestRejectedSendsFailPermanently(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		cmd  func(t *testing.T) event.Event
		code string
	}{
		{"local: invalid number", aliyunEnv, func(t *testing.T) event.Event { return sendCommand(t, "12345", "x") }, "invalid_number"},
		{"local: not a phone", tencentEnv, func(t *testing.T) event.Event {
			e, _ := event.New(sms.TypeSend, "/desk", map[string]any{"channel": "sms", "to": map[string]string{"kind": "wechat_openid", "value": "o1"},
				"message": map[string]any{"type": "text", "text": "x"}})
			return e
		}, "unaddressable"},
		{"local: image", aliyunEnv, func(t *testing.T) event.Event {
			e, _ := event.New(sms.TypeSend, "/desk", map[string]any{"channel": "sms", "to": map[string]string{"kind": "phone", "value": "+8613800138000"},
				"message": map[string]any{"type": "image", "media_url": "https://example.com/a.png"}})
			return e
		}, "unsupported_message_type"},
		{"aliyun: unapproved template", merge(aliyunEnv, map[string]string{"SMS_ALIYUN_TEMPLATE_CODE": "SMS_999999"}),
			func(t *testing.T) event.Event { return sendCommand(t, "+8613800138000", "x") }, "isv.SMS_TEMPLATE_ILLEGAL"},
		{"aliyun: unapproved sign", aliyunEnv, func(t *testing.T) event.Event {
			e, _ := event.New(sms.TypeSend, "/desk", map[string]any{"channel": "sms", "to": map[string]string{"kind": "phone", "value": "+8613800138000"},
				"account": "未审核签名", "message": map[string]any{"type": "text", "text": "x"}})
			return e
		}, "isv.SMS_SIGNATURE_ILLEGAL"},
		{"tencent: unapproved template", merge(tencentEnv, map[string]string{"SMS_TENCENT_TEMPLATE_ID": "999"}),
			func(t *testing.T) event.Event { return sendCommand(t, "+8613800138000", "x") }, "FailedOperation.TemplateIncorrectOrUnapproved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tc.vars)
			cmd := tc.cmd(t)
			tb.publish(t, cmd)
			failed := tb.waitStatus(t, cmd.ID(), "failed")
			if failed.ErrorCode != tc.code || failed.Error == "" {
				t.Fatalf("failed %+v, want code %s", failed, tc.code)
			}
			f := false
			if recs := tb.env.Records(sim.Filter{Op: "SendSms", Failed: &f}); len(recs) != 0 {
				t.Fatalf("a rejected send was accepted: %+v", recs)
			}
		})
	}
}

func TestWrongCredentialsDeadLetter(t *testing.T) {
	t.Parallel()
	for _, vars := range []map[string]string{
		aliyunEnv, tencentEnv, // the keys are right at start (check_test.go: wrong ones stop the start), then refused
	} {
		t.Run(vars["SMS_PROVIDER"], func(t *testing.T) {
			t.Parallel()
			tb := setup(t, vars)
			fault := map[string]string{"aliyun": "aliyun " + aliyun.OpSendSms + "=SignatureDoesNotMatch",
				"tencent": "tencent " + tencent.OpSendSms + "=AuthFailure.SecretIdNotFound"}[vars["SMS_PROVIDER"]]
			key, code, _ := strings.Cut(fault, "=")
			if err := tb.env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: code}); err != nil {
				t.Fatal(err)
			}
			cmd := sendCommand(t, "+8613800138000", "x")
			tb.publish(t, cmd)
			bustest.WaitFor(t, 15*time.Second, "dead letter", func() bool { return tb.bus.StoredCount(t, bus.StreamDLQ, ">") == 1 })
			if s := tb.statuses(t); len(s) != 0 {
				t.Fatalf("statuses %+v", s)
			}
			tru := true
			recs := tb.env.Records(sim.Filter{Vendor: vars["SMS_PROVIDER"], Failed: &tru})
			want := "SignatureDoesNotMatch"
			if vars["SMS_PROVIDER"] == "tencent" {
				want = "AuthFailure.SecretIdNotFound"
			}
			if len(recs) != 1 || !strings.Contains(recs[0].Error, want) {
				t.Fatalf("sandbox records %+v, want one %s", recs, want)
			}
		})
	}
}

// A push the bus cannot store is answered 5xx, so the vendor pushes again.
func TestPushNotAckedWithoutJetStream(t *testing.T) {
	t.Parallel()
	tb := setup(t, tencentEnv)
	if err := tb.bus.Client.JetStream().DeleteStream(context.Background(), bus.StreamIn); err != nil {
		t.Fatal(err)
	}
	status, body := tb.post(t, "/hooks/sms/tencent/reply?token="+token, `{"extend":"","mobile":"13800138000","nationcode":"86","sign":"","text":"hi","time":1764201600}`)
	if status < 500 || strings.Contains(body, `"result":0`) {
		t.Fatalf("answered %d %s", status, body)
	}
}

// ---- vendor timestamps out of bounds ----

type timedData struct {
	ChannelMessageID string    `json:"channel_message_id"`
	VendorMessageID  string    `json:"vendor_message_id"`
	SentAt           time.Time `json:"sent_at"`
	At               time.Time `json:"at"`
	VendorTime       *string   `json:"vendor_time"`
}

// A push timed in 2001 or 2099 (a wrong vendor or handset clock) is stored at the time of
// receipt, keeping the vendor's time as vendor_time; an ordinary one keeps its own time.
func TestVendorTimeOutOfBounds(t *testing.T) {
	t.Parallel()
	normal := time.Now().Add(-time.Hour).Truncate(time.Second)
	y2001 := time.Date(2001, 9, 9, 9, 46, 40, 0, aliwire.Beijing)
	y2099 := time.Date(2099, 1, 1, 8, 0, 0, 0, aliwire.Beijing)
	for _, tc := range []struct {
		provider, path, subject, body string
		want                          map[string]time.Time // event id suffix → the vendor time, zero when it stands
	}{
		{"aliyun", "/hooks/sms/aliyun/up", sms.SubjectIn, "[" +
			fmt.Sprintf(`{"phone_number":"13800138000","send_time":"%s","content":"a","sign_name":"omnibus","sequence_id":2001},`, aliwire.FormatTime(y2001)) +
			fmt.Sprintf(`{"phone_number":"13800138000","send_time":"%s","content":"b","sign_name":"omnibus","sequence_id":2099},`, aliwire.FormatTime(y2099)) +
			fmt.Sprintf(`{"phone_number":"13800138000","send_time":"%s","content":"c","sign_name":"omnibus","sequence_id":1}]`, aliwire.FormatTime(normal)),
			map[string]time.Time{":2001": y2001, ":2099": y2099, ":1": {}}},
		{"aliyun", "/hooks/sms/aliyun/report", sms.SubjectStatus, "[" +
			fmt.Sprintf(`{"phone_number":"13800138000","report_time":"%s","success":true,"biz_id":"2001^0","out_id":""},`, aliwire.FormatTime(y2001)) +
			fmt.Sprintf(`{"phone_number":"13800138000","report_time":"%s","success":true,"biz_id":"2099^0","out_id":""},`, aliwire.FormatTime(y2099)) +
			fmt.Sprintf(`{"phone_number":"13800138000","report_time":"%s","success":true,"biz_id":"1^0","out_id":""}]`, aliwire.FormatTime(normal)),
			map[string]time.Time{":2001^0:13800138000:true": y2001, ":2099^0:13800138000:true": y2099, ":1^0:13800138000:true": {}}},
		{"tencent", "/hooks/sms/tencent/status", sms.SubjectStatus, "[" +
			fmt.Sprintf(`{"user_receive_time":"%s","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","sid":"2001"},`, tcwire.FormatReportTime(y2001)) +
			fmt.Sprintf(`{"user_receive_time":"%s","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","sid":"2099"},`, tcwire.FormatReportTime(y2099)) +
			fmt.Sprintf(`{"user_receive_time":"%s","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","sid":"1"}]`, tcwire.FormatReportTime(normal)),
			map[string]time.Time{":2001:SUCCESS": y2001, ":2099:SUCCESS": y2099, ":1:SUCCESS": {}}},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/hooks/sms/"), func(t *testing.T) {
			t.Parallel()
			tb := setup(t, map[string]map[string]string{"aliyun": aliyunEnv, "tencent": tencentEnv}[tc.provider])
			before := time.Now().Truncate(time.Second)
			if status, body := tb.post(t, tc.path+"?token="+token, tc.body); status != 200 {
				t.Fatalf("answered %d %s", status, body)
			}
			after := time.Now()
			events := tb.bus.Events(t, bus.StreamIn, tc.subject+".>")
			if len(events) != len(tc.want) {
				t.Fatalf("%d events stored, want %d", len(events), len(tc.want))
			}
			for _, e := range events {
				var suffix string
				var vendor time.Time
				for s, v := range tc.want {
					if strings.HasSuffix(e.ID(), s) {
						suffix, vendor = s, v
					}
				}
				var d timedData
				if err := json.Unmarshal(e.Data(), &d); err != nil || suffix == "" {
					t.Fatalf("event %s %s: %v", e.ID(), e.Data(), err)
				}
				got := d.SentAt
				if tc.subject == sms.SubjectStatus {
					got = d.At
				}
				if !got.Equal(e.Time().Truncate(time.Second)) {
					t.Errorf("%s: data time %s, event time %s", e.ID(), got, e.Time())
				}
				if vendor.IsZero() {
					if !got.Equal(normal) || d.VendorTime != nil {
						t.Errorf("%s: an ordinary time became %s (vendor_time %v), want %s", e.ID(), got, d.VendorTime, normal)
					}
					continue
				}
				if got.Before(before) || got.After(after) {
					t.Errorf("%s: time %s, want the time of receipt (%s … %s)", e.ID(), got, before, after)
				}
				if d.VendorTime == nil || *d.VendorTime != vendor.UTC().Format(time.RFC3339) {
					t.Errorf("%s: vendor_time %v, want %s", e.ID(), d.VendorTime, vendor.UTC().Format(time.RFC3339))
				}
			}
		})
	}
	t.Run("tencent/reply", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, tencentEnv)
		before := time.Now().Truncate(time.Second)
		for _, at := range []int64{y2099.Unix(), normal.Unix()} {
			body := fmt.Sprintf(`{"extend":"","mobile":"13800138000","nationcode":"86","sign":"omnibus","text":"t%d","time":%d}`, at, at)
			if status, answer := tb.post(t, "/hooks/sms/tencent/reply?token="+token, body); status != 200 {
				t.Fatalf("answered %d %s", status, answer)
			}
		}
		after := time.Now()
		events := tb.bus.Events(t, bus.StreamIn, sms.SubjectIn+".>")
		if len(events) != 2 {
			t.Fatalf("%d events", len(events))
		}
		for _, e := range events {
			var d timedData
			_ = json.Unmarshal(e.Data(), &d)
			switch {
			case d.VendorTime == nil:
				if !d.SentAt.Equal(normal) || !e.Time().Equal(normal) {
					t.Errorf("ordinary reply at %s / %s, want %s", d.SentAt, e.Time(), normal)
				}
			case *d.VendorTime != "2099-01-01T00:00:00Z" || d.SentAt.Before(before) || d.SentAt.After(after):
				t.Errorf("2099 reply: sent_at %s vendor_time %s", d.SentAt, *d.VendorTime)
			}
		}
	})
}

// ---- large pushes ----

// A 5,000-item push (Aliyun pushes a bulk send's receipts as one JSON array) is answered once
// every item is stored, re-pushes are stored once, and a push the bus cannot store is answered
// with a retry status and marks nothing as seen. Timing is BenchmarkPush5000's business.
func TestLargePush(t *testing.T) {
	t.Parallel()
	items := 5000
	if raceEnabled {
		items = 1500
	}
	tb := setup(t, aliyunEnv)
	up := bigPush("up", 1, items, time.Now().Add(-time.Minute))
	status, body := tb.post(t, "/hooks/sms/aliyun/up?token="+token, up)
	if status != 200 || strings.TrimSpace(body) != `{"code":0,"msg":"接收成功"}` {
		t.Fatalf("answered %d %.300s", status, body)
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, sms.SubjectIn+".>"); n != uint64(items) {
		t.Fatalf("%d of %d stored", n, items)
	}
	if n := seenMarks(t, tb); n != items {
		t.Fatalf("%d items marked seen, want %d", n, items)
	}
	// The same push again, and one that overlaps it by half.
	if status, body := tb.post(t, "/hooks/sms/aliyun/up?token="+token, up); status != 200 {
		t.Fatalf("re-push answered %d %.300s", status, body)
	}
	if status, body := tb.post(t, "/hooks/sms/aliyun/up?token="+token, bigPush("up", items/2+1, items, time.Now())); status != 200 {
		t.Fatalf("overlapping push answered %d %.300s", status, body)
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, sms.SubjectIn+".>"); n != uint64(items*3/2) {
		t.Fatalf("%d stored after the re-pushes, want %d", n, items*3/2)
	}
	// Receipts: each tied to its send by the echoed out_id.
	if status, body := tb.post(t, "/hooks/sms/aliyun/report?token="+token, bigPush("report", 1, items, time.Now())); status != 200 {
		t.Fatalf("receipts answered %d %.300s", status, body)
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, sms.SubjectStatus+".>"); n != uint64(items) {
		t.Fatalf("%d of %d receipts stored", n, items)
	}
	for i, s := range tb.statuses(t) {
		if s.Status != "delivered" || !strings.HasPrefix(s.MessageID, "o") {
			t.Fatalf("receipt %d: %+v", i, s)
		}
	}

	// Without the stream: the vendor's retry status, nothing marked.
	tf := setup(t, aliyunEnv)
	if err := tf.bus.Client.JetStream().DeleteStream(context.Background(), bus.StreamIn); err != nil {
		t.Fatal(err)
	}
	status, body = tf.post(t, "/hooks/sms/aliyun/up?token="+token, up)
	if status < 500 || strings.Contains(body, `"code":0`) || !strings.Contains(body, `"reason"`) {
		t.Fatalf("an unstored push answered %d %.300s", status, body)
	}
	if n := seenMarks(t, tf); n != 0 {
		t.Fatalf("an unstored push marked %d items seen", n)
	}
}

// seenMarks counts the in.* keys of the connector's state bucket.
func seenMarks(t *testing.T, tb *testBundle) int {
	t.Helper()
	ctx := context.Background()
	kv, err := tb.bus.Client.JetStream().KeyValue(ctx, sms.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeysFiltered(ctx, "in.>")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return n
}
