package wechatpay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/wechatpay"
)

const (
	mchID, mchSerial, platSerial = "1900000001", "MCHSERIAL01", "PUB_KEY_ID_01"
	apiV3Key                     = "0123456789abcdef0123456789abcdef"
)

type bundle struct {
	srv       *httptest.Server
	sim       *wechatpay.Sim
	mch, plat *rsa.PrivateKey
	mu        sync.Mutex
	paid      []wire.Transaction
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
	b.mch, _ = rsa.GenerateKey(rand.Reader, 2048)
	b.plat, _ = rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.DiscardHandler))
	s, err := wechatpay.New(env, wechatpay.Config{MchID: mchID, MerchantPublicKey: b64(&b.mch.PublicKey), MerchantSerial: mchSerial,
		PrivateKey: b64(b.plat), Serial: platSerial, APIv3Key: apiV3Key, PayAfter: payAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wire.VerifyResponse(wire.Keys{platSerial: &b.plat.PublicKey}, wire.SignedFrom(r.Header), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, `{"code":"FAIL","message":"签名错误"}`, http.StatusUnauthorized)
			return
		}
		n, err := wire.ParseNotify(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tx, err := n.DecryptTransaction(apiV3Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.paid = append(b.paid, tx)
		b.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	b.sim = s
	return b
}

// call signs a request with key, checks the answer's signature and decodes it into out.
func (b *bundle) call(t *testing.T, key *rsa.PrivateKey, method, path string, in, out any) int {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	a, err := wire.SignRequest(key, mchID, mchSerial, method, path, body, time.Now(), "NONCE123")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, b.srv.URL+"/sandbox/wechatpay"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", a.String())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := wire.VerifyResponse(wire.Keys{platSerial: &b.plat.PublicKey}, wire.SignedFrom(resp.Header), raw, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("the sandbox's answer does not verify: %v", err)
	}
	if out != nil && len(raw) > 0 {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

func order(no string, fen int64, notify string) wire.OrderRequest {
	return wire.OrderRequest{AppID: "wx01", MchID: mchID, Description: "续费", OutTradeNo: no, NotifyURL: notify, Amount: wire.Amount{Total: fen, Currency: "CNY"}}
}

func TestNativePayNotify(t *testing.T) {
	t.Parallel()
	b := setup(t, 50*time.Millisecond)
	var n1, n2 wire.NativeResponse
	if code := b.call(t, b.mch, "POST", wire.PathNative, order("OB1234567890", 1250, b.srv.URL+"/notify"), &n1); code != 200 || n1.CodeURL == "" {
		t.Fatalf("native: %d %+v", code, n1)
	}
	if code := b.call(t, b.mch, "POST", wire.PathNative, order("OB1234567890", 1250, b.srv.URL+"/notify"), &n2); code != 200 || n2.CodeURL != n1.CodeURL {
		t.Fatalf("native again: %d %+v", code, n2)
	}
	var e wire.Error
	if code := b.call(t, b.mch, "POST", wire.PathNative, order("OB1234567890", 1, b.srv.URL+"/notify"), &e); code != 400 || e.Code != wire.CodeInvalidRequest {
		t.Fatalf("another amount: %d %+v", code, e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.paid)
		b.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notify")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tx := b.paid[0]; tx.TradeState != wire.StateSuccess || tx.OutTradeNo != "OB1234567890" || tx.Amount.Total != 1250 {
		t.Errorf("notified %+v", tx)
	}
	var tx wire.Transaction
	if code := b.call(t, b.mch, "GET", wire.PathOutTradeNo+"OB1234567890?mchid="+mchID, nil, &tx); code != 200 || tx.TradeState != wire.StateSuccess {
		t.Errorf("query: %d %+v", code, tx)
	}
	if code := b.call(t, b.mch, "POST", wire.PathOutTradeNo+"OB1234567890/close", wire.CloseRequest{MchID: mchID}, &e); code != 400 || e.Code != wire.CodeOrderPaid {
		t.Errorf("close of a paid order: %d %+v", code, e)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, -1)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	var e wire.Error
	if code := b.call(t, other, "POST", wire.PathNative, order("OB1234567890", 100, b.srv.URL+"/notify"), &e); code != 401 || e.Code != wire.CodeSignError {
		t.Fatalf("forged: %d %+v", code, e)
	}
	h5 := order("OB1234567891", 100, b.srv.URL+"/notify")
	if code := b.call(t, b.mch, "POST", wire.PathH5, h5, &e); code != 400 || e.Code != wire.CodeParamError {
		t.Fatalf("H5 without scene_info: %d %+v", code, e)
	}
	if code := b.call(t, b.mch, "GET", wire.PathOutTradeNo+"OB-none?mchid="+mchID, nil, &e); code != 404 || e.Code != wire.CodeOrderNotExist {
		t.Fatalf("unknown order: %d %+v", code, e)
	}
	if code := b.call(t, b.mch, "POST", wire.PathNative, order("OB1234567892", 100, b.srv.URL+"/notify"), nil); code != 200 {
		t.Fatal(code)
	}
	if code := b.call(t, b.mch, "POST", wire.PathOutTradeNo+"OB1234567892/close", wire.CloseRequest{MchID: mchID}, nil); code != 204 {
		t.Fatalf("close: %d", code)
	}
	if err := b.sim.Pay(context.Background(), "OB1234567892"); err == nil {
		t.Fatal("paid a closed order")
	}
}
