package payment_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	wirealipay "github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	wirewx "github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
	"github.com/omnibus-dev/omnibus/services/payment"
	sbalipay "github.com/omnibus-dev/omnibus/services/sandbox/alipay"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	sbwx "github.com/omnibus-dev/omnibus/services/sandbox/wechatpay"
)

const (
	convID = "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	custID = "3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13"

	appID      = "2021000000000099"
	mchID      = "1900000099"
	mchSerial  = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	platSerial = "PUB_KEY_ID_TEST"
	apiV3Key   = "testAPIv3Key0123testAPIv3Key0123"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testKeys are four fresh key pairs: the Alipay app's and Alipay's, the WeChat merchant's and
// the platform's.
type testKeys struct{ app, alipay, mch, plat *rsa.PrivateKey }

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	keysOnce.Do(func() {
		gen := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		keys = testKeys{gen(), gen(), gen(), gen()}
	})
	return keys
}

func privB64(k *rsa.PrivateKey) string {
	b, _ := x509.MarshalPKCS8PrivateKey(k)
	return base64.StdEncoding.EncodeToString(b)
}

func pubB64(k *rsa.PrivateKey) string {
	b, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return base64.StdEncoding.EncodeToString(b)
}

type testBundle struct {
	bus    *bustest.Bundle
	env    *sim.Env
	srv    *httptest.Server
	alipay *sbalipay.Sim
	wx     *sbwx.Sim
	keys   testKeys
}

// sandbox starts the simulated Alipay and WeChat Pay on mux (served by srv, where the
// connector's webhooks are too) and returns the connector's environment.
func sandbox(t testing.TB, mux *http.ServeMux, srv *httptest.Server, payAfter time.Duration) (*sim.Env, *sbalipay.Sim, *sbwx.Sim, map[string]string) {
	t.Helper()
	k := getKeys(t)
	env := sim.NewEnv(mux, srv.URL+"/hooks", nil, 0, quiet())
	ali, err := sbalipay.New(env, sbalipay.Config{AppID: appID, AppPublicKey: pubB64(k.app), PrivateKey: privB64(k.alipay), PayAfter: payAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ali.Close)
	wx, err := sbwx.New(env, sbwx.Config{MchID: mchID, MerchantPublicKey: pubB64(k.mch), MerchantSerial: mchSerial,
		PrivateKey: privB64(k.plat), Serial: platSerial, APIv3Key: apiV3Key, PayAfter: payAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wx.Close)
	return env, ali, wx, map[string]string{
		"PAYMENT_PROVIDER": "alipay", "PAYMENT_NOTIFY_BASE": srv.URL + "/hooks/payment",
		"ALIPAY_APP_ID": appID, "ALIPAY_APP_PRIVATE_KEY": privB64(k.app), "ALIPAY_PUBLIC_KEY": pubB64(k.alipay),
		"ALIPAY_GATEWAY":   srv.URL + "/sandbox/alipay/gateway.do",
		"WECHATPAY_MCH_ID": mchID, "WECHATPAY_APP_ID": "wx0000test", "WECHATPAY_MCH_PRIVATE_KEY": privB64(k.mch),
		"WECHATPAY_MCH_SERIAL": mchSerial, "WECHATPAY_PLATFORM_PUBLIC_KEY": pubB64(k.plat), "WECHATPAY_PLATFORM_SERIAL": platSerial,
		"WECHATPAY_APIV3_KEY": apiV3Key, "WECHATPAY_API_BASE": srv.URL + "/sandbox/wechatpay",
	}
}

// setup runs the sandbox and the connector on one server, as the all-in-one does.
func setup(t testing.TB, payAfter time.Duration, extra map[string]string) *testBundle {
	t.Helper()
	tb := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet())), keys: getKeys(t)}
	mux := http.NewServeMux()
	tb.srv = httptest.NewServer(mux)
	t.Cleanup(tb.srv.Close)
	var cfg map[string]string
	tb.env, tb.alipay, tb.wx, cfg = sandbox(t, mux, tb.srv, payAfter)
	for k, v := range extra {
		cfg[k] = v
	}
	servicetest.Run(t, payment.Service(), tb.bus.Client, mux, cfg)
	// The webhooks are mounted once setup ran: wait for them.
	bustest.WaitFor(t, 10*time.Second, "the webhooks", func() bool {
		resp, err := http.Post(tb.srv.URL+"/hooks/payment/alipay", "text/plain", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound
	})
	return tb
}

func linkRequest(t testing.TB, n int, provider, amount string) event.Event {
	t.Helper()
	data := map[string]any{"conversation_id": convID, "customer_id": custID, "amount": map[string]string{"value": amount, "currency": "CNY"},
		"description": fmt.Sprintf("续费服务 %d", n), "order_id": fmt.Sprintf("20261207%03d", n)}
	if provider != "" {
		data["provider"] = provider
	}
	e, err := event.New(payment.TypeRequested, "/desk", data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (tb *testBundle) request(t testing.TB, n int, provider, amount string) event.Event {
	t.Helper()
	e := linkRequest(t, n, provider, amount)
	if err := tb.bus.Client.Publish(context.Background(), payment.TypeRequested, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// wait returns the first event of typ correlated to id.
func (tb *testBundle) wait(t testing.TB, typ, id string) event.Event {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, 20*time.Second, typ+" of "+id, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamTool, "omni.tool.payment.>") {
			if e.Type() == typ && event.CorrelationID(e) == id {
				got = e
				return true
			}
		}
		return false
	})
	if err := schema.Default().Validate(got.Type(), got.Data()); err != nil {
		t.Errorf("%s is not schema-valid: %v", got.Type(), err)
	}
	return got
}

func (tb *testBundle) count(t testing.TB, typ string) int {
	n := 0
	for _, e := range tb.bus.Events(t, bus.StreamTool, "omni.tool.payment.>") {
		if e.Type() == typ {
			n++
		}
	}
	return n
}

type linkData struct {
	Provider   string `json:"provider"`
	URL        string `json:"url"`
	QRCode     string `json:"qr_code"`
	OutTradeNo string `json:"out_trade_no"`
	Amount     struct{ Value, Currency string }
	ExpiresAt  time.Time `json:"expires_at"`
	ErrorCode  string    `json:"error_code"`
	Fallback   *struct {
		Note string `json:"note"`
	} `json:"fallback"`
	Status        string `json:"status"`
	TransactionID string `json:"transaction_id"`
	Source        string `json:"source"`
}

func decode(t testing.TB, e event.Event) linkData {
	t.Helper()
	var d linkData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConformance runs the tool connectors' conformance suite against the sandbox.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunTool(t, connectortest.ToolHarness{
		Spec: payment.Spec, Service: payment.Service(),
		Setup: func(t *testing.T) map[string]string {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			_, _, _, cfg := sandbox(t, mux, srv, -1)
			return cfg
		},
		Request: func(t *testing.T, n int) (string, event.Event) {
			return payment.TypeRequested, linkRequest(t, n, "", "99.00")
		},
	})
}

// TestLinkPaid is the whole flow per provider: request → link → the simulated customer pays →
// verified notify → paid status event (once, however often the provider notifies).
func TestLinkPaid(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{"alipay", "wechat_pay"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, 300*time.Millisecond, nil)
			req := tb.request(t, 1, provider, "88.80")
			done := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
			if done.OutTradeNo != payment.OutTradeNo(req.ID()) || done.Amount.Value != "88.80" || done.ExpiresAt.IsZero() {
				t.Errorf("completed: %+v", done)
			}
			switch provider {
			case "alipay":
				if done.Provider != "alipay" || !strings.HasPrefix(done.QRCode, "https://qr.alipay.com/") ||
					!strings.Contains(done.URL, "method=alipay.trade.wap.pay") {
					t.Errorf("alipay link: %+v", done)
				}
				// The wap link is signed: the simulated cashier opens it.
				resp, err := http.Get(done.URL)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "88.80") {
					t.Errorf("wap link: %d %s", resp.StatusCode, body)
				}
			default:
				if done.Provider != "wechatpay" || !strings.HasPrefix(done.QRCode, "weixin://wxpay/bizpayurl?pr=") || !strings.HasPrefix(done.URL, "https://") {
					t.Errorf("wechat link: %+v", done)
				}
			}
			paid := decode(t, tb.wait(t, payment.TypeStatusChanged, req.ID()))
			if paid.Status != "paid" || paid.OutTradeNo != done.OutTradeNo || paid.Amount.Value != "88.80" || paid.TransactionID == "" || paid.Source != "notify" {
				t.Errorf("status: %+v", paid)
			}
			// Every vendor call is audited, signatures redacted.
			bustest.WaitFor(t, 10*time.Second, "audit records", func() bool {
				return len(tb.bus.Events(t, bus.StreamAudit, "omni.audit.payment")) > 0
			})
			for _, e := range tb.bus.Events(t, bus.StreamAudit, "omni.audit.payment") {
				if strings.Contains(string(e.Data()), "sign=") && !strings.Contains(string(e.Data()), "REDACTED") {
					t.Errorf("audit record with a signature: %s", e.Data())
				}
			}
		})
	}
}

// TestRedeliveredRequestSameOrder: the same request again re-sends the same order (same
// out_trade_no and expiry), which the provider answers idempotently, and adds no answer.
func TestRedeliveredRequestSameOrder(t *testing.T) {
	t.Parallel()
	tb := setup(t, -1, nil)
	req := tb.request(t, 1, "", "10.00")
	first := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
	if _, ok := tb.alipay.Trade(first.OutTradeNo); !ok {
		t.Fatalf("the sandbox has no trade %s", first.OutTradeNo)
	}
	if n := tb.count(t, payment.TypeCompleted); n != 1 {
		t.Fatalf("%d answers", n)
	}
}

// TestVendorDown: the gateway fails or hangs → .failed with a fallback, within the budget.
func TestVendorDown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, key string
		fault     sim.Fault
		provider  string
	}{
		{"alipay errors", "alipay gateway.do", sim.Fault{ErrorRatio: 1}, "alipay"},
		{"alipay hangs", "alipay gateway.do", sim.Fault{TimeoutRatio: 1, Hold: time.Second}, "alipay"},
		{"alipay refuses", "alipay gateway.do", sim.Fault{ErrorRatio: 1, Code: "ACQ.ACCESS_FORBIDDEN"}, "alipay"},
		{"wechat bare 503", "wechatpay *", sim.Fault{ErrorRatio: 1, Code: "http_503"}, "wechatpay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, -1, nil)
			if err := tb.env.SetFault(tt.key, tt.fault); err != nil {
				t.Fatal(err)
			}
			req := tb.request(t, 1, tt.provider, "10.00")
			f := decode(t, tb.wait(t, payment.TypeFailed, req.ID()))
			if f.ErrorCode == "" || f.Fallback == nil || f.Fallback.Note == "" || f.OutTradeNo == "" {
				t.Errorf("failed: %+v", f)
			}
		})
	}
}

func TestBadSignatureAnswer(t *testing.T) {
	t.Parallel()
	// Alipay signs with another key after the start (check_test.go: a key that does not verify
	// at start stops it): every answer fails verification.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tb := setup(t, -1, nil)
	tb.alipay.RotateKey(other)
	req := tb.request(t, 1, "alipay", "10.00")
	if f := decode(t, tb.wait(t, payment.TypeFailed, req.ID())); f.ErrorCode != "bad_signature" {
		t.Errorf("failed: %+v", f)
	}
}

func post(t testing.TB, url, contentType string, body []byte, h http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", contentType)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAlipayNotifyRejected: forged, tampered and unknown notifies get a 4xx and publish nothing;
// a genuine one (twice) publishes paid once and is answered success.
func TestAlipayNotifyRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t, -1, map[string]string{"PAYMENT_SWEEP": "0"})
	req := tb.request(t, 1, "alipay", "25.00")
	done := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
	trade, _ := tb.alipay.Trade(done.OutTradeNo)
	trade.Status = wirealipay.TradeSuccess
	trade.PaidAt = time.Now()
	hook := tb.srv.URL + "/hooks/payment/alipay"
	signed := func(key *rsa.PrivateKey, mutate func(url.Values)) []byte {
		f := sbalipay.NotifyForm(appID, trade, time.Now())
		if mutate != nil {
			mutate(f)
		}
		if err := wirealipay.SignNotify(key, f); err != nil {
			t.Fatal(err)
		}
		return []byte(f.Encode())
	}
	form := "application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name string
		body []byte
		want int
	}{
		{"forged (another key)", signed(tb.keys.app, nil), http.StatusUnauthorized},
		{"tampered after signing", []byte(strings.Replace(string(signed(tb.keys.alipay, nil)), "total_amount=25.00", "total_amount=0.01", 1)), http.StatusUnauthorized},
		{"signed with another amount", signed(tb.keys.alipay, func(f url.Values) { f.Set("total_amount", "0.01") }), http.StatusBadRequest},
		{"unknown order", signed(tb.keys.alipay, func(f url.Values) { f.Set("out_trade_no", "OB0000000000000000000000000000") }), http.StatusBadRequest},
		{"another app", signed(tb.keys.alipay, func(f url.Values) { f.Set("app_id", "2021000000000001") }), http.StatusBadRequest},
		{"no sign", []byte("notify_id=1&app_id=" + appID + "&out_trade_no=" + done.OutTradeNo + "&trade_status=TRADE_SUCCESS"), http.StatusUnauthorized},
		{"garbage", []byte("%zz"), http.StatusBadRequest},
	} {
		if code, body := post(t, hook, form, tt.body, nil); code != tt.want || body == wirealipay.NotifyAck {
			t.Errorf("%s: %d %q, want %d", tt.name, code, body, tt.want)
		}
	}
	if n := tb.count(t, payment.TypeStatusChanged); n != 0 {
		t.Fatalf("%d status events after refused notifies", n)
	}
	good := signed(tb.keys.alipay, nil)
	for range 2 {
		if code, body := post(t, hook, form, good, nil); code != http.StatusOK || body != wirealipay.NotifyAck {
			t.Fatalf("genuine notify: %d %q", code, body)
		}
	}
	tb.wait(t, payment.TypeStatusChanged, req.ID())
	if n := tb.count(t, payment.TypeStatusChanged); n != 1 {
		t.Fatalf("%d status events for one payment notified twice", n)
	}
}

// TestWechatNotifyRejected: forged, replayed (old timestamp, reused nonce), unknown serial,
// tampered amount and unknown order are refused; nothing is published.
func TestWechatNotifyRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t, -1, map[string]string{"PAYMENT_SWEEP": "0"})
	req := tb.request(t, 1, "wechatpay", "12.50")
	done := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
	hook := tb.srv.URL + "/hooks/payment/wechatpay"
	tx := wirewx.Transaction{MchID: mchID, AppID: "wx0000test", OutTradeNo: done.OutTradeNo, TransactionID: "4200000001", TradeType: "NATIVE",
		TradeState: wirewx.StateSuccess, SuccessTime: time.Now().Format(time.RFC3339), Amount: &wirewx.TxAmount{Total: 1250, Currency: "CNY"}}
	body := func(tx wirewx.Transaction) []byte {
		b, err := sbwx.NotifyBody(apiV3Key, tx, "abcdefghijkl", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(key *rsa.PrivateKey, serial string, b []byte, at time.Time, nonce string) http.Header {
		s, err := wirewx.SignResponse(key, serial, b, at, nonce)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Set(h)
		return h
	}
	other := tx
	other.Amount = &wirewx.TxAmount{Total: 1, Currency: "CNY"}
	unknown := tx
	unknown.OutTradeNo = "OB000000000000000000000000000"
	n := 0
	fresh := func() string { n++; return fmt.Sprintf("nonce-%d-%d", n, time.Now().UnixNano()) }
	for _, tt := range []struct {
		name string
		body []byte
		h    http.Header
		want int
	}{
		{"forged (another key)", body(tx), sign(tb.keys.mch, platSerial, body(tx), time.Now(), fresh()), http.StatusUnauthorized},
		{"old timestamp", body(tx), sign(tb.keys.plat, platSerial, body(tx), time.Now().Add(-10*time.Minute), fresh()), http.StatusUnauthorized},
		{"unknown serial", body(tx), sign(tb.keys.plat, "PUB_KEY_ID_OTHER", body(tx), time.Now(), fresh()), http.StatusUnauthorized},
		{"tampered amount", body(other), sign(tb.keys.plat, platSerial, body(other), time.Now(), fresh()), http.StatusBadRequest},
		{"unknown order", body(unknown), sign(tb.keys.plat, platSerial, body(unknown), time.Now(), fresh()), http.StatusBadRequest},
		{"no signature", body(tx), http.Header{}, http.StatusBadRequest},
	} {
		if code, resp := post(t, hook, "application/json", tt.body, tt.h); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, resp, tt.want)
		}
	}
	if c := tb.count(t, payment.TypeStatusChanged); c != 0 {
		t.Fatalf("%d status events after refused notifies", c)
	}
	good := body(tx)
	h := sign(tb.keys.plat, platSerial, good, time.Now(), "replayed-nonce-1")
	if code, resp := post(t, hook, "application/json", good, h); code != http.StatusNoContent {
		t.Fatalf("genuine notify: %d %s", code, resp)
	}
	if code, _ := post(t, hook, "application/json", good, h); code != http.StatusUnauthorized {
		t.Errorf("replayed nonce: %d", code)
	}
	tb.wait(t, payment.TypeStatusChanged, req.ID())
	if c := tb.count(t, payment.TypeStatusChanged); c != 1 {
		t.Fatalf("%d status events", c)
	}
}

// TestSweep: a link whose notify never comes is found paid by a query; an expired unpaid one is
// closed.
func TestSweep(t *testing.T) {
	t.Parallel()
	// The notify URL the connector gives the providers is unreachable: every notify is lost.
	tb := setup(t, -1, map[string]string{"PAYMENT_SWEEP": "100ms", "PAYMENT_QUERY_AFTER": "200ms", "PAYMENT_EXPIRY": "1m",
		"PAYMENT_NOTIFY_BASE": "http://127.0.0.1:1/hooks/payment"})
	for i, provider := range []string{"alipay", "wechatpay"} {
		req := tb.request(t, i, provider, "5.00")
		done := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
		if provider == "alipay" {
			_ = tb.alipay.Pay(context.Background(), done.OutTradeNo)
		} else {
			_ = tb.wx.Pay(context.Background(), done.OutTradeNo)
		}
		st := decode(t, tb.wait(t, payment.TypeStatusChanged, req.ID()))
		if st.Status != "paid" || st.Source != "query" || st.TransactionID == "" {
			t.Errorf("%s status %+v", provider, st)
		}
	}
}

// TestExpiredLinkClosed: past PAYMENT_EXPIRY an unpaid link is closed at the provider and
// reported closed.
func TestExpiredLinkClosed(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	tb := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet())), keys: getKeys(t)}
	mux := http.NewServeMux()
	tb.srv = httptest.NewServer(mux)
	t.Cleanup(tb.srv.Close)
	var cfg map[string]string
	tb.env, tb.alipay, tb.wx, cfg = sandbox(t, mux, tb.srv, -1)
	cfg["PAYMENT_SWEEP"], cfg["PAYMENT_EXPIRY"] = "100ms", "30m"
	servicetest.Run(t, payment.ServiceWith(payment.Options{Now: now}), tb.bus.Client, mux, cfg)
	req := tb.request(t, 1, "alipay", "8.00")
	done := decode(t, tb.wait(t, payment.TypeCompleted, req.ID()))
	offset.Store(int64(31 * time.Minute))
	st := decode(t, tb.wait(t, payment.TypeStatusChanged, req.ID()))
	if st.Status != "closed" || st.Source != "close" {
		t.Errorf("status %+v", st)
	}
	if tr, _ := tb.alipay.Trade(done.OutTradeNo); tr.Status != wirealipay.TradeClosed {
		t.Errorf("the sandbox's trade is %s", tr.Status)
	}
}

// TestBadRequests: a request the providers cannot take is answered .failed at once, without a
// vendor call.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	tb := setup(t, -1, nil)
	before := tb.env.Stats()["alipay gateway.do"].Calls // the start check's
	for i, tt := range []struct{ provider, amount, code string }{
		{"", "0.00", "invalid_request"},
		{"paypal", "1.00", "not_configured"},
	} {
		req := tb.request(t, i, tt.provider, tt.amount)
		if f := decode(t, tb.wait(t, payment.TypeFailed, req.ID())); f.ErrorCode != tt.code || f.Fallback == nil {
			t.Errorf("%+v: %+v", tt, f)
		}
	}
	if n := tb.env.Stats()["alipay gateway.do"].Calls - before; n != 0 {
		t.Errorf("%d gateway calls for bad requests", n)
	}
}

// TestNotifyBeforeAnswer: the customer pays (and the provider notifies) before the connector has
// published the link — the order is stored before the provider is asked, so the notify is taken.
func TestNotifyBeforeAnswer(t *testing.T) {
	t.Parallel()
	tb := setup(t, time.Millisecond, nil)
	for i, provider := range []string{"alipay", "wechatpay"} {
		req := tb.request(t, i, provider, "3.30")
		if st := decode(t, tb.wait(t, payment.TypeStatusChanged, req.ID())); st.Status != "paid" {
			t.Errorf("%s: %+v", provider, st)
		}
		tb.wait(t, payment.TypeCompleted, req.ID())
	}
}
