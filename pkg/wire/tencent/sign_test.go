package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Vector 5.1 of /work/shared/vendors/vectors.md (VERIFIED): the 'signature v3' doc example.
const (
	exampleID  = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	exampleKey = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	exampleTS  = int64(1551113065)
	// The payload's \uXXXX escapes are literal ASCII backslash sequences.
	v51Payload   = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	v51Canonical = "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" +
		"35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
	v51PayloadHash   = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
	v51CanonicalHash = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
	v51StringToSign  = "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
	v51Signature     = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	v51Authorization = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	// 5.3 (a) SELF-COMPUTED: the same with x-tc-action signed.
	v53aSignature = "644be983de9a8a3f00db8eadaba61467c3b429e2215758ba897b738ca469fd26"
	// 5.3 (b) SELF-COMPUTED: SMS SendSms with the demo payload.
	v53bPayload          = `{"PhoneNumberSet":["+8618511122266"],"SmsSdkAppId":"1400006666","TemplateId":"1234","SignName":"腾讯云","TemplateParamSet":["12345"],"SessionContext":"test"}`
	v53bPayloadHash      = "a95331243f188c060ace133c87f369ecb0c72ad78a18c2971afc497d27e3725f"
	v53bCanonicalHash    = "1239422b92054f8082ebe207b54a564cb09e4a4f73bdcedd29d362a51007384f"
	v53bSignature        = "5428ae8026dff6e23f34b3bd217e2606219abe2b1e16c017a9d340386606252c"
	v53bSignatureAction  = "201d9ed67605eebf542a25126916521bc0509dfa77bd2367f7f43af8e2398dca"
	cvmHost, smsHostName = "cvm.tencentcloudapi.com", "sms.tencentcloudapi.com"
)

func exampleSecret(id string) (string, bool) { return exampleKey, id == exampleID }

func request(t *testing.T, host, action string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://"+host+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderAction, action)
	return req
}

func TestVectorCVMDescribeInstances(t *testing.T) {
	t.Parallel()
	body := []byte(v51Payload)
	if got := SHA256Hex(body); got != v51PayloadHash {
		t.Fatalf("payload hash %s, want %s", got, v51PayloadHash)
	}
	req := request(t, cvmHost, "DescribeInstances", body)
	signed := []string{"content-type", "host"}
	cr := CanonicalRequest("POST", "/", "", CanonicalHeaders(req.Header, req.Host, signed), signed, SHA256Hex(body))
	if cr != v51Canonical {
		t.Fatalf("canonical request\n got %q\nwant %q", cr, v51Canonical)
	}
	if got := SHA256Hex([]byte(cr)); got != v51CanonicalHash {
		t.Errorf("hashed canonical request %s", got)
	}
	if Date(exampleTS) != "2019-02-25" {
		t.Errorf("date %s: the UTC date, not Beijing's 2019-02-26", Date(exampleTS))
	}
	sts := StringToSign(exampleTS, CredentialScope(Date(exampleTS), "cvm"), cr)
	if sts != v51StringToSign {
		t.Errorf("string to sign\n got %q\nwant %q", sts, v51StringToSign)
	}
	if got := Signature(exampleKey, "2019-02-25", "cvm", sts); got != v51Signature {
		t.Errorf("signature %s", got)
	}
	Signer{SecretID: exampleID, SecretKey: exampleKey, Service: "cvm"}.Sign(req, body, exampleTS)
	if got := req.Header.Get("Authorization"); got != v51Authorization {
		t.Fatalf("Authorization\n got %s\nwant %s", got, v51Authorization)
	}
	if req.Header.Get(HeaderTimestamp) != "1551113065" {
		t.Errorf("X-TC-Timestamp %q", req.Header.Get(HeaderTimestamp))
	}
	v, err := Verify(req, body, "cvm", exampleSecret, time.Unix(exampleTS+60, 0), 5*time.Minute)
	if err != nil || v.SecretID != exampleID || v.CanonicalRequest != v51Canonical {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}

func TestVectorCVMWithAction(t *testing.T) {
	t.Parallel()
	body := []byte(v51Payload)
	req := request(t, cvmHost, "DescribeInstances", body)
	signed := []string{"content-type", "host", "x-tc-action"}
	if got := CanonicalHeaders(req.Header, req.Host, signed); !strings.HasSuffix(got, "x-tc-action:describeinstances\n") {
		t.Fatalf("x-tc-action is signed lower-cased: %q", got)
	}
	Signer{SecretID: exampleID, SecretKey: exampleKey, Service: "cvm", SignedHeaders: signed}.Sign(req, body, exampleTS)
	if a, _ := ParseAuthorization(req.Header.Get("Authorization")); a.Signature != v53aSignature {
		t.Fatalf("signature %s, want %s", a.Signature, v53aSignature)
	}
}

func TestVectorSMSSendSms(t *testing.T) {
	t.Parallel()
	// The demo request, marshalled by our struct, is the demo payload byte for byte.
	body, err := json.Marshal(SendSmsRequest{PhoneNumberSet: []string{"+8618511122266"}, SmsSdkAppID: "1400006666",
		TemplateID: "1234", SignName: "腾讯云", TemplateParamSet: []string{"12345"}, SessionContext: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != v53bPayload {
		t.Fatalf("marshalled request\n got %s\nwant %s", body, v53bPayload)
	}
	if got := SHA256Hex(body); got != v53bPayloadHash {
		t.Fatalf("payload hash %s", got)
	}
	for _, tc := range []struct {
		signed []string
		want   string
	}{
		{[]string{"content-type", "host"}, v53bSignature},
		{[]string{"content-type", "host", "x-tc-action"}, v53bSignatureAction},
	} {
		req := request(t, smsHostName, ActionSendSms, body)
		if len(tc.signed) == 2 {
			cr := CanonicalRequest("POST", "/", "", CanonicalHeaders(req.Header, req.Host, tc.signed), tc.signed, SHA256Hex(body))
			if got := SHA256Hex([]byte(cr)); got != v53bCanonicalHash {
				t.Errorf("hashed canonical request %s, want %s", got, v53bCanonicalHash)
			}
		}
		Signer{SecretID: exampleID, SecretKey: exampleKey, Service: Service, SignedHeaders: tc.signed}.Sign(req, body, exampleTS)
		a, err := ParseAuthorization(req.Header.Get("Authorization"))
		if err != nil || a.Signature != tc.want || a.Service != "sms" || a.Date != "2019-02-25" {
			t.Fatalf("signed %v: %+v %v, want signature %s", tc.signed, a, err, tc.want)
		}
		if _, err := Verify(req, body, Service, exampleSecret, time.Unix(exampleTS, 0), 5*time.Minute); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	now := time.Unix(exampleTS, 0)
	for _, tc := range []struct {
		name string
		mut  func(r *http.Request, body []byte) []byte
		now  time.Time
		want error
	}{
		{"body changed", func(_ *http.Request, b []byte) []byte { return append(b, ' ') }, now, ErrSignature},
		{"content-type changed", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Content-Type", "application/json")
			return b
		}, now, ErrSignature},
		{"action changed", func(r *http.Request, b []byte) []byte { r.Header.Set(HeaderAction, "SendStatus"); return b }, now, ErrSignature},
		{"host changed", func(r *http.Request, b []byte) []byte { r.Host = "sms.ap-guangzhou.tencentcloudapi.com"; return b }, now, ErrSignature},
		{"timestamp changed", func(r *http.Request, b []byte) []byte { r.Header.Set(HeaderTimestamp, "1551113066"); return b }, now, ErrSignature},
		{"stale", func(_ *http.Request, b []byte) []byte { return b }, now.Add(6 * time.Minute), ErrExpired},
		{"future", func(_ *http.Request, b []byte) []byte { return b }, now.Add(-6 * time.Minute), ErrExpired},
		{"unknown id", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), exampleID, "AKIDnobody", 1))
			return b
		}, now, ErrSecretIDNotFound},
		{"wrong service", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/sms/", "/cvm/", 1))
			return b
		}, now, ErrSignature},
		{"no authorization", func(r *http.Request, b []byte) []byte { r.Header.Del("Authorization"); return b }, now, ErrMalformed},
		{"no timestamp", func(r *http.Request, b []byte) []byte { r.Header.Del(HeaderTimestamp); return b }, now, ErrMalformed},
		{"host unsigned", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "content-type;host;x-tc-action", "content-type;x-tc-action", 1))
			return b
		}, now, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := []byte(v53bPayload)
			req := request(t, smsHostName, ActionSendSms, body)
			Signer{SecretID: exampleID, SecretKey: exampleKey, Service: Service, SignedHeaders: []string{"content-type", "host", "x-tc-action"}}.Sign(req, body, exampleTS)
			body = tc.mut(req, body)
			if _, err := Verify(req, body, Service, exampleSecret, tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCanonicalQueryString(t *testing.T) {
	t.Parallel()
	q := url.Values{"Limit": {"10"}, "Action": {"DescribeInstances"}, "Filters.0.Values.0": {"未命名 a*b"}}
	want := "Action=DescribeInstances&Filters.0.Values.0=%E6%9C%AA%E5%91%BD%E5%90%8D%20a%2Ab&Limit=10"
	if got := CanonicalQueryString(q); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	// A GET is signed over its canonical query.
	req, _ := http.NewRequest(http.MethodGet, "https://cvm.tencentcloudapi.com/?"+q.Encode(), nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s := Signer{SecretID: exampleID, SecretKey: exampleKey, Service: "cvm"}
	s.Sign(req, nil, exampleTS)
	if _, err := Verify(req, nil, "cvm", exampleSecret, time.Unix(exampleTS, 0), time.Minute); err != nil {
		t.Fatal(err)
	}
	req.URL.RawQuery = "Limit=11"
	if _, err := Verify(req, nil, "cvm", exampleSecret, time.Unix(exampleTS, 0), time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("changed query verified: %v", err)
	}
}

// FuzzPercentEncode checks the encoder against url.PathUnescape as oracle.
func FuzzPercentEncode(f *testing.F) {
	for _, s := range []string{"未命名", "a b*c~d", "Filters.0.Name", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := PercentEncode(s)
		if back, err := url.PathUnescape(e); err != nil || back != s {
			t.Fatalf("PathUnescape(PercentEncode(%q)) = %q, %v", s, back, err)
		}
		if strings.ContainsAny(e, " +*/:=&?") {
			t.Fatalf("reserved character left in %q", e)
		}
	})
}

// FuzzParseAuthorization: the header parser never panics, errors wrap ErrMalformed, and what it
// accepts renders back to the same parse.
func FuzzParseAuthorization(f *testing.F) {
	f.Add(v51Authorization)
	f.Add("TC3-HMAC-SHA256 Credential=a/2019-02-25/sms/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=00")
	f.Add("TC3-HMAC-SHA256 Credential=a/2019-13-25/sms/tc3_request, SignedHeaders=host, Signature=00")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorization(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := ParseAuthorization(Authorization(a.SecretID, CredentialScope(a.Date, a.Service), a.SignedHeaders, a.Signature))
		if err != nil || again.SecretID != a.SecretID || again.Date != a.Date || again.Service != a.Service || again.Signature != a.Signature {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}
