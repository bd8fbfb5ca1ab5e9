package oms

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Self-computed vectors (Python hmac/hashlib/urllib.parse.quote(safe="-_.~") over the documented
// string_to_sign), one GET and one POST with a UTF-8 body.
const (
	vecSecret   = "oms-secret-2026"
	vecGetSTS   = "GET\n/open/v1/orders\napp_key=omnibus-demo&mobile=13800138000&nonce=4f3c2b1a0e9d8c7b&page=1&page_size=10&sign_method=hmac-sha256&timestamp=1764230400\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	vecGetSign  = "97A0B89A6468E207E40244C3C846906C71ABFD9EE24A538938AAEC2E76EE1933"
	vecPostBody = `{"order_no":"SO2611201234567890","external_id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","source":"omnibus","summary":"客户问题已解决 (wechatkf, sms)","outcome":"resolved","channels":["wechatkf","sms"],"opened_at":"2026-11-27 16:00:00","closed_at":"2026-11-27 16:20:00"}`
	vecPostSign = "BA71FA160DFD1A695B52CB7AF5501D20E5956B06785FAE963241B65453DF4BC9"
)

func TestSignVectors(t *testing.T) {
	t.Parallel()
	q := url.Values{"mobile": {"13800138000"}, "page": {"1"}, "page_size": {"10"}, "app_key": {"omnibus-demo"},
		"timestamp": {"1764230400"}, "nonce": {"4f3c2b1a0e9d8c7b"}, "sign_method": {"hmac-sha256"}}
	if got := StringToSign("GET", "/open/v1/orders", q, nil); got != vecGetSTS {
		t.Fatalf("string to sign\n%s\nwant\n%s", got, vecGetSTS)
	}
	if got := Sign(vecSecret, "GET", "/open/v1/orders", q, nil); got != vecGetSign {
		t.Fatalf("GET sign %s, want %s", got, vecGetSign)
	}
	q = url.Values{"app_key": {"omnibus-demo"}, "timestamp": {"1764230400"}, "nonce": {"Zz09aAbBcCdDeEfF"}, "sign_method": {"hmac-sha256"}}
	if got := Sign(vecSecret, "POST", "/open/v1/aftersale/service-records", q, []byte(vecPostBody)); got != vecPostSign {
		t.Fatalf("POST sign %s, want %s", got, vecPostSign)
	}
}

func TestSignRequestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764230400, 0)
	secrets := func(k string) (string, bool) { return vecSecret, k == "omnibus-demo" }
	newReq := func() (*http.Request, []byte) {
		body := []byte(vecPostBody)
		r := httptest.NewRequest(http.MethodPost, "http://oms.test/open/v1/aftersale/service-records?x=a+b%2Fc", bytes.NewReader(body))
		SignRequest(r, "omnibus-demo", vecSecret, body, now, "Zz09aAbBcCdDeEfF")
		return r, body
	}
	r, body := newReq()
	v, err := Verify(r, body, secrets, now.Add(Window))
	if err != nil || v.AppKey != "omnibus-demo" || v.Nonce != "Zz09aAbBcCdDeEfF" {
		t.Fatalf("%+v %v", v, err)
	}
	tests := []struct {
		name   string
		mutate func(r *http.Request, body []byte) []byte
		now    time.Time
		want   error
	}{
		{"body changed", func(_ *http.Request, b []byte) []byte { return append(b, ' ') }, now, ErrSignature},
		{"query changed", func(r *http.Request, b []byte) []byte { r.URL.RawQuery += "&page=2"; return b }, now, ErrSignature},
		{"path changed", func(r *http.Request, b []byte) []byte { r.URL.Path = "/open/v1/orders"; return b }, now, ErrSignature},
		{"method changed", func(r *http.Request, b []byte) []byte { r.Method = http.MethodPut; return b }, now, ErrSignature},
		{"late", func(_ *http.Request, b []byte) []byte { return b }, now.Add(Window + time.Second), ErrTimestamp},
		{"early", func(_ *http.Request, b []byte) []byte { return b }, now.Add(-Window - time.Second), ErrTimestamp},
		{"unknown key", func(r *http.Request, b []byte) []byte { setQ(r, ParamAppKey, "other"); return b }, now, ErrAppKey},
		{"no sign", func(r *http.Request, b []byte) []byte { setQ(r, ParamSign, ""); return b }, now, ErrMissing},
		{"short nonce", func(r *http.Request, b []byte) []byte { setQ(r, ParamNonce, "abc"); return b }, now, ErrMissing},
		{"md5", func(r *http.Request, b []byte) []byte { setQ(r, ParamSignMethod, "md5"); return b }, now, ErrMissing},
		{"twice", func(r *http.Request, b []byte) []byte { r.URL.RawQuery += "&nonce=Zz09aAbBcCdDeEfF"; return b }, now, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, body := newReq()
			body = tt.mutate(r, body)
			if _, err := Verify(r, body, secrets, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func setQ(r *http.Request, k, v string) {
	q := r.URL.Query()
	q.Set(k, v)
	r.URL.RawQuery = q.Encode()
}

const sampleOrder = `{"order_no":"SO2611201234567890","platform":"tmall","platform_order_no":"3987654321098765432","shop_name":"星河旗舰店","status":"SENT","status_text":"已发货","created_at":"2026-11-20 14:03:11","paid_at":"2026-11-20 14:04:02","currency":"CNY","total_amount":"299.00","discount_amount":"20.00","freight_amount":"0.00","pay_amount":"279.00","buyer_mobile":"138****8000","receiver":{"name":"张*","mobile":"138****8000","province":"上海","city":"上海市","district":"浦东新区","address":"世纪大道**号"},"items":[{"sku_code":"SKU-1001","item_name":"保温杯","spec":"500ml 白色","quantity":1,"price":"299.00","amount":"299.00"}],"waybills":[{"logistics_code":"SF","logistics_name":"顺丰速运","waybill_no":"SF1234567890123","shipped_at":"2026-11-21 09:00:00"}],"aftersale_status":"NONE"}`

func TestParseResponse(t *testing.T) {
	t.Parallel()
	var page OrderPage
	body := `{"code":0,"msg":"success","request_id":"r1","data":{"total":1,"page":1,"page_size":10,"orders":[` + sampleOrder + `]}}`
	if err := ParseResponse(200, nil, []byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if o := page.Orders[0]; o.Waybills[0].WaybillNo != "SF1234567890123" || o.PayAmount != "279.00" || o.Items[0].Quantity != 1 {
		t.Fatalf("%+v", o)
	}
	h := http.Header{"Retry-After": {"3"}}
	err := ParseResponse(429, h, []byte(`{"code":42901,"msg":"请求过于频繁","request_id":"r2"}`), &page)
	var oe *Error
	if !errors.As(err, &oe) || !errors.Is(err, ErrRateLimited) || oe.RetryAfter != 3*time.Second || !oe.Temporary() {
		t.Fatalf("%#v", err)
	}
	if err := ParseResponse(404, nil, []byte(`{"code":40401,"msg":"订单不存在","request_id":"r3"}`), &page); !errors.Is(err, ErrOrderNotFound) {
		t.Fatal(err)
	}
	if err := ParseResponse(502, nil, []byte(`<html>bad gateway</html>`), &page); !errors.As(err, &oe) || oe.Code != CodeUnknownResponse || !oe.Temporary() {
		t.Fatal(err)
	}
	for name, b := range map[string]string{
		"html 200":   `<html></html>`,
		"no data":    `{"code":0,"msg":"success","request_id":"r"}`,
		"bad amount": strings.Replace(body, `"279.00"`, `"279"`, 1),
		"bad status": strings.Replace(body, `"SENT"`, `"LOST"`, 1),
		"bad time":   strings.Replace(body, `"2026-11-20 14:03:11"`, `"2026-11-20T14:03:11Z"`, 1),
		"no waybill": strings.Replace(body, `"SF1234567890123"`, `""`, 1),
		"total low":  strings.Replace(body, `"total":1`, `"total":0`, 1),
	} {
		if err := ParseResponse(200, nil, []byte(b), &page); !errors.Is(err, ErrMalformedBody) {
			t.Errorf("%s: err %v, want ErrMalformedBody", name, err)
		}
	}
}

func TestMobiles(t *testing.T) {
	t.Parallel()
	if NationalMobile("+8613800138000") != "13800138000" || NationalMobile("+14155551212") != "+14155551212" {
		t.Fatal("NationalMobile")
	}
	if MaskMobile("+8613800138000") != "138****8000" || MaskMobile("123") != "***" {
		t.Fatal(MaskMobile("+8613800138000"))
	}
	tm, err := ParseTime("2026-11-27 16:00:00")
	if err != nil || !tm.Equal(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)) || FormatTime(tm) != "2026-11-27 16:00:00" {
		t.Fatal(tm, err)
	}
}

// FuzzParseResponse: any body is either a checked value or an error; no panics.
func FuzzParseResponse(f *testing.F) {
	f.Add(200, []byte(`{"code":0,"msg":"success","request_id":"r1","data":{"total":1,"page":1,"page_size":10,"orders":[`+sampleOrder+`]}}`))
	f.Add(429, []byte(`{"code":42901,"msg":"请求过于频繁","request_id":"r2"}`))
	f.Add(200, []byte(`{"code":0,"msg":"success","request_id":"r","data":{"record_id":"SR1","external_id":"c1","duplicate":true}}`))
	f.Add(502, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var page OrderPage
		if err := ParseResponse(status, nil, body, &page); err == nil {
			if err := page.Check(); err != nil {
				t.Fatalf("accepted an unchecked page: %v", err)
			}
		}
		var rec ServiceRecordResult
		if err := ParseResponse(status, nil, body, &rec); err == nil && rec.RecordID == "" {
			t.Fatal("accepted a record result without id")
		}
	})
}

// FuzzVerify: a request signed by SignRequest verifies, whatever its query and body; changing the
// body breaks it.
func FuzzVerify(f *testing.F) {
	f.Add("mobile=13800138000&page=1", []byte(""))
	f.Add("x=a+b%2Fc&y=%E4%B8%AD", []byte(vecPostBody))
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://oms.test/open/v1/orders", bytes.NewReader(body))
		if err != nil {
			return
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		for _, p := range []string{ParamAppKey, ParamTimestamp, ParamNonce, ParamSignMethod, ParamSign} {
			q.Del(p)
		}
		r.URL.RawQuery = q.Encode()
		now := time.Unix(1764230400, 0)
		SignRequest(r, "k", "s", body, now, "0123456789abcdef")
		secrets := func(string) (string, bool) { return "s", true }
		if _, err := Verify(r, body, secrets, now); err != nil {
			t.Fatalf("own signature rejected: %v (query %q)", err, r.URL.RawQuery)
		}
		if _, err := Verify(r, append(append([]byte{}, body...), 'x'), secrets, now); !errors.Is(err, ErrSignature) {
			t.Fatalf("changed body accepted: %v", err)
		}
	})
}
