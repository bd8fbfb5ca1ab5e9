package alipay_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/services/sandbox/alipay"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const appID = "2021000000000001"

type bundle struct {
	srv      *httptest.Server
	sim      *alipay.Sim
	app, ali *rsa.PrivateKey
	mu       sync.Mutex
	notifies []url.Values
}

func b64(k any) string {
	var der []byte
	switch k := k.(type) {
	case *rsa.PrivateKey:
		der, _ = x509.MarshalPKCS8PrivateKey(k)
	case *rsa.PublicKey:
		der, _ = x509.MarshalPKIXPublicKey(k)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func setup(t *testing.T, payAfter time.Duration) *bundle {
	t.Helper()
	b := &bundle{}
	b.app, _ = rsa.GenerateKey(rand.Reader, 2048)
	b.ali, _ = rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.DiscardHandler))
	s, err := alipay.New(env, alipay.Config{AppID: appID, AppPublicKey: b64(&b.app.PublicKey), PrivateKey: b64(b.ali), PayAfter: payAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// The merchant's notify endpoint: verifies with the Alipay public key, answers success.
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, _, err := wire.ParseNotify(body)
		if err != nil || wire.VerifyNotify(&b.ali.PublicKey, f) != nil {
			http.Error(w, "bad notify", http.StatusUnauthorized)
			return
		}
		b.mu.Lock()
		b.notifies = append(b.notifies, f)
		b.mu.Unlock()
		_, _ = w.Write([]byte(wire.NotifyAck))
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	b.sim = s
	return b
}

func (b *bundle) call(t *testing.T, key *rsa.PrivateKey, method string, biz any, out wire.Result) error {
	t.Helper()
	p, err := wire.Request{AppID: appID, Method: method, NotifyURL: b.srv.URL + "/notify", Timestamp: time.Now(), BizContent: biz}.Params(key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(b.srv.URL+"/sandbox/alipay"+wire.Path, wire.ContentType, strings.NewReader(p.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := wire.VerifyResponse(&b.ali.PublicKey, body, method, out); err != nil {
		t.Fatalf("the sandbox's answer does not verify: %v\n%s", err, body)
	}
	return out.Head().Err()
}

func TestPrecreatePayNotify(t *testing.T) {
	t.Parallel()
	b := setup(t, 50*time.Millisecond)
	biz := wire.PrecreateBiz{OutTradeNo: "OB1234567890", TotalAmount: "88.88", Subject: "续费"}
	var r1, r2 wire.PrecreateResponse
	if err := b.call(t, b.app, wire.MethodPrecreate, biz, &r1); err != nil || r1.QRCode == "" {
		t.Fatalf("precreate: %v %+v", err, r1)
	}
	// Idempotent: the same order answers the same QR.
	if err := b.call(t, b.app, wire.MethodPrecreate, biz, &r2); err != nil || r2.QRCode != r1.QRCode {
		t.Fatalf("precreate again: %v %+v", err, r2)
	}
	// Another amount under the same out_trade_no is refused.
	var r3 wire.PrecreateResponse
	biz.TotalAmount = "1.00"
	if err := b.call(t, b.app, wire.MethodPrecreate, biz, &r3); r3.SubCode != wire.SubInconsistent {
		t.Fatalf("another amount: %v %+v", err, r3)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.notifies)
		b.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notify")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f := b.notifies[0]; f.Get("trade_status") != wire.TradeSuccess || f.Get("total_amount") != "88.88" || f.Get("out_trade_no") != "OB1234567890" {
		t.Errorf("notify %v", f)
	}
	var q wire.QueryResponse
	if err := b.call(t, b.app, wire.MethodQuery, wire.TradeRef{OutTradeNo: "OB1234567890"}, &q); err != nil || q.TradeStatus != wire.TradeSuccess {
		t.Errorf("query: %v %+v", err, q)
	}
	var c wire.CloseResponse
	if err := b.call(t, b.app, wire.MethodClose, wire.TradeRef{OutTradeNo: "OB1234567890"}, &c); c.SubCode != wire.SubTradeStatusErr {
		t.Errorf("close of a paid trade: %v %+v", err, c)
	}
}

func TestSignatureRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, -1)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	var r wire.PrecreateResponse
	if err := b.call(t, other, wire.MethodPrecreate, wire.PrecreateBiz{OutTradeNo: "OB1", TotalAmount: "1.00", Subject: "x"}, &r); r.SubCode != wire.SubInvalidSign {
		t.Fatalf("forged request: %v %+v", err, r)
	}
	var q wire.QueryResponse
	if err := b.call(t, b.app, wire.MethodQuery, wire.TradeRef{OutTradeNo: "OB-unknown"}, &q); q.SubCode != wire.SubTradeNotExist {
		t.Fatalf("unknown trade: %v %+v", err, q)
	}
	if err := b.sim.Pay(context.Background(), "OB-unknown"); err == nil {
		t.Fatal("paid a trade that does not exist")
	}
}
