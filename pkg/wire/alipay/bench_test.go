package alipay_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
)

// The cost of Alipay's RSA2 per call — signing a precreate request, verifying its answer — next
// to the bare crypto/rsa operations it is made of (go test -bench . -run ^$ ./wire/alipay).

func benchKey(b *testing.B) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

func BenchmarkBareSignPKCS1v15(b *testing.B) {
	k := benchKey(b)
	h := sha256.Sum256([]byte("app_id=2021000000000001&biz_content=..."))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareVerifyPKCS1v15(b *testing.B) {
	k := benchKey(b)
	h := sha256.Sum256([]byte("app_id=2021000000000001&biz_content=..."))
	sig, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignPrecreateRequest(b *testing.B) {
	k := benchKey(b)
	r := alipay.Request{AppID: "2021000000000001", Method: alipay.MethodPrecreate, NotifyURL: "https://omnibus.example.com/hooks/payment/alipay",
		Timestamp: time.Now(), BizContent: alipay.PrecreateBiz{OutTradeNo: "OB0123456789abcdef0123456789abc", TotalAmount: "88.88", Subject: "续费服务"}}
	for b.Loop() {
		if _, err := r.Params(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPrecreateResponse(b *testing.B) {
	k := benchKey(b)
	body, _ := alipay.EncodeResponse(k, alipay.MethodPrecreate, alipay.PrecreateResponse{Common: alipay.Common{Code: alipay.CodeSuccess, Msg: "Success"},
		OutTradeNo: "OB0123456789abcdef0123456789abc", QRCode: "https://qr.alipay.com/bax0123456789"})
	for b.Loop() {
		var out alipay.PrecreateResponse
		if err := alipay.VerifyResponse(&k.PublicKey, body, alipay.MethodPrecreate, &out); err != nil {
			b.Fatal(err)
		}
	}
}
