package alipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
)

// Vectors of vendors/vectors.md §9 (alipay/alipay-sdk-nodejs test/alipay.test.js).
const (
	notifyKey = `MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB`
	notify1   = `app_id=2019073166072302&auth_app_id=2019073166072302&buyer_id=2088102534368455&buyer_logon_id=xud***@126.com&buyer_pay_amount=0.10&charset=utf-8&fund_bill_list=[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]&gmt_create=2019-08-15 15:37:55&gmt_payment=2019-08-15 15:37:58&invoice_amount=0.10&notify_id=2019081500222153759068450559621257&notify_time=2019-08-15 15:37:59&notify_type=trade_status_sync&out_trade_no=20190815153750722-564-55&point_amount=0.00&receipt_amount=0.10&seller_email=z97-yuquerevenue@service.aliyun.com&seller_id=2088531891668739&subject=语雀空间 500人规模&total_amount=0.10&trade_no=2019081522001468450509133591&trade_status=TRADE_SUCCESS&version=1.0`
	sign1     = `QUxj7MQ0NQT++AyDbykzTw6iWflrgfY7EIssTaNfJaDkOHqZAFv3hbr97h+z/LCkmnqkBq+V81uHtb3q+i19W1B7FlMNfJB8XPSFD3xdHXEzvj9ccFTE9gxCEG+3oub4TeNe+rrOCt+3cfOFRh5jZzAiZbEZQem3ZMdhIHz/I6TVGNWuPOL4Wr56/Vjq57BLZUPKYpDo7DVfNEYeu0dZ76irMhE4a5FJ26c6qQu9gnG6NmKhtn+tSI6859RKF9bzptbM49klrliVnjBI4m6y7f329Ur9lecC/UlbIo3vKDFmcsLlADKu64FT5jjyRVaVQcP64khZdJwRdzrJ5QxxxQ==`
	notify2   = `app_id=2019073166072302&auth_app_id=2019073166072302&buyer_id=2088102534368455&buyer_logon_id=xud***@126.com&buyer_pay_amount=0.10&charset=utf-8&fund_bill_list=[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]&gmt_create=2019-08-15 15:56:22&gmt_payment=2019-08-15 15:56:24&invoice_amount=0.10&notify_id=2019081500222155624068450559358070&notify_time=2019-08-15 15:56:25&notify_type=trade_status_sync&out_trade_no=20190815155618536-564-57&point_amount=0.00&receipt_amount=0.10&seller_email=z97-yuquerevenue@service.aliyun.com&seller_id=2088531891668739&subject=语雀空间 500人规模&total_amount=0.10&trade_no=2019081522001468450512505578&trade_status=TRADE_SUCCESS&version=1.0`
	sign2     = `QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==`

	responseKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6kdjvWNCT+K3qQQgAyv+
8k0+lkrL6+dA+cb9OAX5sZgIxP2ycK51VYxwZgZgHCIWCkB/l/Zqqhye/E6x/nNM
SqRkW3FGpP4/hKWByG3Ah8DXRcUaAvd8aCWHcBpgZqjBp3ADPTcHViI10cGe0mn1
3wGaIZQl6G74CtnY6YQJ/1NkoE+C9Z0VD4xor4oJOZW1/rbc85InBmjU87BWtxmk
IQWWVw+Vwd0EL8oDU9GWNZ1Se9sZf4UHxs+goHh3/JhQly3iKqlt/hgFsip78kvd
eDwoL8gS6RCUi+Bp6j9Ee5Thd+CC61Ilk7iKiUQMMVn6+kdTGcV2XwUBezH2Go4d
lwIDAQAB
-----END PUBLIC KEY-----`
	responseBody = `{"alipay_offline_material_image_upload_response":{"code":"10000","msg":"Success","image_id":"akGwYYaFTai3r1uB0ww-1QAAACMAAQQD","image_url":"https:\/\/oalipay-dl-django.alicdn.com\/rest\/1.0\/image?fileIds=akGwYYaFTai3r1uB0ww-1QAAACMAAQQD&zoom=original"},"sign":"PAb3IueJzGe/pU/fRAPjwIs543Kc/A6D0rz03AMejwr8h8rDc6FhDJDnz3fGLDdQP7ctjtQwwJW3pmdZZcGmp4lb/5YYgtoK6McjnRr4ER/raJLYn1IbpzkowhGow2esA/XeDblIAYUbZjU6ts0IqNncrZrCknDWHpaZXwGuaU7CUBk74xBeMeja7rEEkFlm9MRtiQNYnum/cGVtcDv/aQ8KkPyAD58oJiAzoXv0R6jFhlZtAWv+M0SaOlhTpZh1K6wlP+1Umiqdvqbc1oWdfpv75a+lGTkGHMy8K7/bnAGm20IRsisSv1B5rpJyeGfrVf6tb4MZ7vG4w0rS0c2hfA=="}`
)

// form turns a vector's k=v&... content (raw values) back into the form Alipay posts.
func form(content, sign string, extra ...string) url.Values {
	f := url.Values{}
	for kv := range strings.SplitSeq(content, "&") {
		k, v, _ := strings.Cut(kv, "=")
		f.Set(k, v)
	}
	f.Set("sign", sign)
	f.Set("sign_type", "RSA2")
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func TestNotifyVectors(t *testing.T) {
	t.Parallel()
	key, err := alipay.ParsePublicKey(notifyKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		form url.Values
		want error
	}{
		{"notify 1", form(notify1, sign1), nil},
		{"notify 2", form(notify2, sign2), nil},
		{"notify 1 with sign 2", form(notify1, sign2), alipay.ErrSignature},
		{"tampered amount", form(notify1, sign1, "total_amount", "100.00"), alipay.ErrSignature},
		{"empty value ignored", form(notify1, sign1, "passback_params", ""), nil},
		{"added field", form(notify1, sign1, "buyer_open_id", "x"), alipay.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Through the wire: encode as Alipay posts it, parse as the connector does.
			f, n, err := alipay.ParseNotify([]byte(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			if n.TradeStatus != alipay.TradeSuccess {
				t.Errorf("trade_status %q", n.TradeStatus)
			}
			if err := alipay.VerifyNotify(key, f); !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("VerifyNotify = %v, want %v", err, tt.want)
			}
		})
	}
	// rsaCheckV1 excludes sign_type: the content is the vector, byte for byte.
	if got := alipay.NotifyContent(form(notify1, sign1)); got != notify1 {
		t.Errorf("NotifyContent:\n got %s\nwant %s", got, notify1)
	}
}

func TestResponseVector(t *testing.T) {
	t.Parallel()
	key, err := alipay.ParsePublicKey(responseKey)
	if err != nil {
		t.Fatal(err)
	}
	const method = "alipay.offline.material.image.upload"
	var out struct {
		alipay.Common
		ImageURL string `json:"image_url"`
	}
	if err := alipay.VerifyResponse(key, []byte(responseBody), method, &out); err != nil {
		t.Fatal(err)
	}
	if out.ImageURL != "https://oalipay-dl-django.alicdn.com/rest/1.0/image?fileIds=akGwYYaFTai3r1uB0ww-1QAAACMAAQQD&zoom=original" {
		t.Errorf("image_url %q", out.ImageURL)
	}
	// Re-serialised text (\/ unescaped) must not verify.
	raw, sign, _ := alipay.SplitResponse([]byte(responseBody), method)
	if err := alipay.Verify(key, strings.ReplaceAll(string(raw), `\/`, "/"), sign); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("unescaped text verified: %v", err)
	}
	tampered := strings.Replace(responseBody, `"10000"`, `"10001"`, 1)
	if err := alipay.VerifyResponse(key, []byte(tampered), method, &out); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("tampered response: %v", err)
	}
}

func TestPrecreateContentVector(t *testing.T) {
	t.Parallel()
	// vectors.md §9.4: the content to sign (the signature needs the SDK's fixture key).
	const want = `app_id=2016073100135823&biz_content={"out_trade_no":"T20240102000001","total_amount":"88.88","subject":"Iphone6 16G"}&charset=utf-8&format=JSON&method=alipay.trade.precreate&notify_url=https://example.com/alipay/notify&sign_type=RSA2&timestamp=2024-01-02 03:04:05&version=1.0`
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	ts, _ := alipay.ParseTime("2024-01-02 03:04:05")
	p, err := alipay.Request{AppID: "2016073100135823", Method: alipay.MethodPrecreate, NotifyURL: "https://example.com/alipay/notify",
		Timestamp: ts, BizContent: alipay.PrecreateBiz{OutTradeNo: "T20240102000001", TotalAmount: "88.88", Subject: "Iphone6 16G"}}.Params(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := alipay.Content(p); got != want {
		t.Errorf("content:\n got %s\nwant %s", got, want)
	}
	if err := alipay.VerifyRequest(&key.PublicKey, p); err != nil {
		t.Errorf("own request: %v", err)
	}
	p.Set("biz_content", strings.Replace(p.Get("biz_content"), "88.88", "0.01", 1))
	if err := alipay.VerifyRequest(&key.PublicKey, p); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("tampered request: %v", err)
	}
}

func TestEncodeResponseRoundTrip(t *testing.T) {
	t.Parallel()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	body, err := alipay.EncodeResponse(key, alipay.MethodPrecreate, alipay.PrecreateResponse{
		Common: alipay.Common{Code: alipay.CodeSuccess, Msg: "Success"}, OutTradeNo: "T1", QRCode: "https://qr.alipay.com/bax1"})
	if err != nil {
		t.Fatal(err)
	}
	var out alipay.PrecreateResponse
	if err := alipay.VerifyResponse(&key.PublicKey, body, alipay.MethodPrecreate, &out); err != nil || out.QRCode != "https://qr.alipay.com/bax1" {
		t.Fatalf("%v %+v", err, out)
	}
	f := url.Values{"out_trade_no": {"T1"}, "total_amount": {"1.00"}, "notify_time": {alipay.FormatTime(time.Now())}}
	if err := alipay.SignNotify(key, f); err != nil {
		t.Fatal(err)
	}
	if err := alipay.VerifyNotify(&key.PublicKey, f); err != nil {
		t.Fatal(err)
	}
}

func TestYuan(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s   string
		fen int64
		ok  bool
	}{{"88.88", 8888, true}, {"0.1", 10, true}, {"5", 500, true}, {"0.01", 1, true}, {"-1", 0, false}, {"1.234", 0, false}, {"", 0, false}, {"1.-1", 0, false}, {"a", 0, false}} {
		fen, err := alipay.ParseYuan(tt.s)
		if (err == nil) != tt.ok || fen != tt.fen {
			t.Errorf("ParseYuan(%q) = %d, %v", tt.s, fen, err)
		}
		if tt.ok && alipay.FormatYuan(fen) != map[string]string{"0.1": "0.10", "5": "5.00"}[tt.s] && alipay.FormatYuan(fen) != tt.s {
			t.Errorf("FormatYuan(%d) = %s", fen, alipay.FormatYuan(fen))
		}
	}
}

func FuzzParseNotify(f *testing.F) {
	f.Add([]byte(form(notify1, sign1).Encode()))
	f.Add([]byte(form(notify2, sign2).Encode()))
	f.Add([]byte("notify_id=1&app_id=2&out_trade_no=3&trade_status=TRADE_SUCCESS&sign=AA%3D%3D&total_amount=1e9"))
	f.Add([]byte("%zz"))
	key, err := alipay.ParsePublicKey(notifyKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, n, err := alipay.ParseNotify(body)
		if err != nil {
			return
		}
		if n.OutTradeNo == "" || n.AppID == "" || form.Get("sign") == "" {
			t.Fatalf("accepted a notify without its required fields: %q", body)
		}
		if n.TotalAmount != "" {
			if _, err := alipay.ParseYuan(n.TotalAmount); err != nil {
				t.Fatalf("accepted amount %q", n.TotalAmount)
			}
		}
		// Only the two real notifies verify under the real key.
		if alipay.VerifyNotify(key, form) == nil && n.NotifyID != "2019081500222153759068450559621257" && n.NotifyID != "2019081500222155624068450559358070" {
			t.Fatalf("a fuzzed notify verified: %q", body)
		}
	})
}

func TestVerifyResponseResetsOut(t *testing.T) {
	t.Parallel()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	failed, _ := alipay.EncodeResponse(key, alipay.MethodPrecreate, alipay.Common{Code: alipay.CodeUnavailable, Msg: "busy", SubCode: "isp.unknow-error"})
	ok, _ := alipay.EncodeResponse(key, alipay.MethodPrecreate, alipay.PrecreateResponse{Common: alipay.Common{Code: alipay.CodeSuccess, Msg: "Success"}, QRCode: "q"})
	var out alipay.PrecreateResponse
	_ = alipay.VerifyResponse(&key.PublicKey, failed, alipay.MethodPrecreate, &out)
	if err := alipay.VerifyResponse(&key.PublicKey, ok, alipay.MethodPrecreate, &out); err != nil || out.SubCode != "" || out.Head().Err() != nil {
		t.Fatalf("a success after a failure kept the failure: %+v %v", out, err)
	}
}
