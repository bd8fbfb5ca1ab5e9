package aliyun

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Vector 4.1 of /work/shared/vendors/vectors.md (VERIFIED): the Aliyun SMS doc's SendSms example.
var v41 = struct {
	params                                   url.Values
	canonical, stringToSign, sig, sigEncoded string
	finalQuery                               string
}{
	params: url.Values{
		"AccessKeyId": {"testId"}, "Action": {"SendSms"}, "Format": {"XML"}, "OutId": {"123"},
		"PhoneNumbers": {"15300000001"}, "RegionId": {"cn-hangzhou"}, "SignName": {"阿里云短信测试专用"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"45e25e9b-0a6f-4070-8c85-2956eda1b466"},
		"SignatureVersion": {"1.0"}, "TemplateCode": {"SMS_71390007"}, "TemplateParam": {`{"customer":"test"}`},
		"Timestamp": {"2017-07-12T02:42:19Z"}, "Version": {"2017-05-25"},
	},
	canonical:    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25",
	stringToSign: "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25",
	sig:          "zJDF+Lrzhj/ThnlvIToysFRq6t4=",
	sigEncoded:   "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D",
	finalQuery:   "Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25",
}

func testSecret(id string) (string, bool) {
	switch id {
	case "testId":
		return "testSecret", true
	case "YourAccessKeyId":
		return "YourAccessKeySecret", true
	}
	return "", false
}

func TestVectorV1SendSms(t *testing.T) {
	t.Parallel()
	if got := CanonicalQuery(v41.params); got != v41.canonical {
		t.Errorf("canonical query\n got %s\nwant %s", got, v41.canonical)
	}
	if got := StringToSignV1("GET", v41.params); got != v41.stringToSign {
		t.Errorf("string to sign\n got %s\nwant %s", got, v41.stringToSign)
	}
	sig := SignV1("GET", v41.params, "testSecret")
	if sig != v41.sig {
		t.Fatalf("signature %s, want %s", sig, v41.sig)
	}
	if got := PercentEncode(sig); got != v41.sigEncoded {
		t.Errorf("url-encoded signature %s, want %s", got, v41.sigEncoded)
	}
	if got := "Signature=" + PercentEncode(sig) + "&" + CanonicalQuery(v41.params); got != v41.finalQuery {
		t.Errorf("final query\n got %s\nwant %s", got, v41.finalQuery)
	}
	// The server side: the final URL's query, decoded, verifies; so does the same with
	// Signature already present in params (it is excluded from the string to sign).
	q, err := url.ParseQuery(v41.finalQuery)
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyV1("GET", q, testSecret)
	if err != nil || v.AccessKeyID != "testId" || v.StringToSign != v41.stringToSign {
		t.Fatalf("VerifyV1 = %+v, %v", v, err)
	}
}

func TestVerifyV1Rejects(t *testing.T) {
	t.Parallel()
	base, _ := url.ParseQuery(v41.finalQuery)
	mut := func(f func(url.Values)) url.Values {
		q := url.Values{}
		for k, v := range base {
			q[k] = append([]string(nil), v...)
		}
		f(q)
		return q
	}
	for _, tc := range []struct {
		name   string
		method string
		q      url.Values
		want   error
	}{
		{"tampered phone", "GET", mut(func(q url.Values) { q.Set("PhoneNumbers", "15300000002") }), ErrSignature},
		{"other method", "POST", base, ErrSignature},
		{"unknown key", "GET", mut(func(q url.Values) { q.Set("AccessKeyId", "nobody") }), ErrUnknownAccessKey},
		{"no signature", "GET", mut(func(q url.Values) { q.Del("Signature") }), ErrIncomplete},
		{"no access key", "GET", mut(func(q url.Values) { q.Del("AccessKeyId") }), ErrIncomplete},
		{"other method name", "GET", mut(func(q url.Values) { q.Set("SignatureMethod", "HMAC-SHA256") }), ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := VerifyV1(tc.method, tc.q, testSecret); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyV1 err = %v, want %v", err, tc.want)
			}
		})
	}
}

// Vector 4.2 of vectors.md (VERIFIED): the V3 doc's fixed-input RunInstances example.
const (
	v42URL       = "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
	v42Canonical = "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n" +
		"host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n" +
		"x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
		"x-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\n" +
		"host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	v42Hash = "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
	v42Sig  = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	v42Auth = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
)

func v42Request(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, v42URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderAction, "RunInstances")
	req.Header.Set(HeaderVersion, "2014-05-26")
	req.Header.Set(HeaderDate, "2023-10-26T10:22:32Z")
	req.Header.Set(HeaderNonce, "3156853299f313e23d1673dc12e1703d")
	req.Header.Set("Accept", "application/json") // not signed: neither host, content-type nor x-acs-*
	return req
}

func TestVectorV3RunInstances(t *testing.T) {
	t.Parallel()
	if SHA256Hex(nil) != EmptySHA256 {
		t.Fatalf("empty body hash %s", SHA256Hex(nil))
	}
	req := v42Request(t)
	SignV3(req, nil, "YourAccessKeyId", "YourAccessKeySecret", "/")
	signed := SignedHeadersV3(req.Header)
	if got := strings.Join(signed, ";"); got != "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version" {
		t.Errorf("signed headers %s", got)
	}
	cr := CanonicalRequestV3("POST", "/", req.URL.Query(), req.Header, req.Host, signed, EmptySHA256)
	if cr != v42Canonical {
		t.Errorf("canonical request\n got %q\nwant %q", cr, v42Canonical)
	}
	if got := SHA256Hex([]byte(cr)); got != v42Hash {
		t.Errorf("hashed canonical request %s, want %s", got, v42Hash)
	}
	if got := SignatureV3("YourAccessKeySecret", StringToSignV3(cr)); got != v42Sig {
		t.Errorf("signature %s, want %s", got, v42Sig)
	}
	if got := req.Header.Get("Authorization"); got != v42Auth {
		t.Fatalf("Authorization\n got %s\nwant %s", got, v42Auth)
	}
	v, err := VerifyV3(req, nil, "/", testSecret)
	if err != nil || v.AccessKeyID != "YourAccessKeyId" || v.StringToSign != "ACS3-HMAC-SHA256\n"+v42Hash {
		t.Fatalf("VerifyV3 = %+v, %v", v, err)
	}
}

func TestVerifyV3Rejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mut  func(r *http.Request) []byte
		want error
	}{
		{"body added", func(*http.Request) []byte { return []byte("x") }, ErrSignature},
		{"query changed", func(r *http.Request) []byte { r.URL.RawQuery = "ImageId=other&RegionId=cn-shanghai"; return nil }, ErrSignature},
		{"host changed", func(r *http.Request) []byte { r.Host = "ecs.cn-beijing.aliyuncs.com"; return nil }, ErrSignature},
		{"date changed", func(r *http.Request) []byte { r.Header.Set(HeaderDate, "2023-10-26T10:22:33Z"); return nil }, ErrSignature},
		{"unsigned acs header", func(r *http.Request) []byte { r.Header.Set("x-acs-extra", "1"); return nil }, ErrIncomplete},
		{"no authorization", func(r *http.Request) []byte { r.Header.Del("Authorization"); return nil }, ErrIncomplete},
		{"unknown key", func(r *http.Request) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "YourAccessKeyId", "Nobody", 1))
			return nil
		}, ErrUnknownAccessKey},
		{"nonce unsigned", func(r *http.Request) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-acs-signature-nonce;", "", 1))
			return nil
		}, ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := v42Request(t)
			SignV3(req, nil, "YourAccessKeyId", "YourAccessKeySecret", "/")
			body := tc.mut(req)
			if _, err := VerifyV3(req, body, "/", testSecret); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyV3 err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                "",
		"AZaz09-_.~":      "AZaz09-_.~",
		"a b":             "a%20b",
		"*":               "%2A",
		"+/=":             "%2B%2F%3D",
		"阿":               "%E9%98%BF",
		`{"k":"v"}`:       "%7B%22k%22%3A%22v%22%7D",
		"%":               "%25",
		"\x00\xff":        "%00%FF",
		"2017-07-12T02:4": "2017-07-12T02%3A4",
	} {
		if got := PercentEncode(in); got != want {
			t.Errorf("PercentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "/", "/": "/", "/a b/c": "/a%20b/c", "/x*y": "/x%2Ay"} {
		if got := CanonicalURI(in); got != want {
			t.Errorf("CanonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzPercentEncode checks the encoder against its oracle: url.PathUnescape inverts it, and
// the output holds only unreserved characters and upper-case escapes.
func FuzzPercentEncode(f *testing.F) {
	for _, s := range []string{"阿里云短信测试专用", `{"customer":"test"}`, "a b*c~d", "2017-07-12T02:42:19Z", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := PercentEncode(s)
		back, err := url.PathUnescape(e)
		if err != nil || back != s {
			t.Fatalf("PathUnescape(PercentEncode(%q)) = %q, %v", s, back, err)
		}
		for i := 0; i < len(e); i++ {
			c := e[i]
			if c == '%' {
				if i+2 >= len(e) {
					t.Fatalf("truncated escape in %q", e)
				}
				for _, h := range []byte{e[i+1], e[i+2]} {
					if !strings.ContainsRune("0123456789ABCDEF", rune(h)) {
						t.Fatalf("escape not upper-case hex in %q", e)
					}
				}
				i += 2
				continue
			}
			if !unreserved(c) {
				t.Fatalf("reserved byte %q left in %q", c, e)
			}
		}
	})
}

// FuzzParseAuthorizationV3 feeds the header parser arbitrary input: it must not panic, and
// anything it accepts must render back to an equivalent header.
func FuzzParseAuthorizationV3(f *testing.F) {
	f.Add(v42Auth)
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=b")
	f.Add("ACS3-HMAC-SHA256 Credential=,SignedHeaders=,Signature=")
	f.Add("acs testId:sig")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorizationV3(s)
		if err != nil {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("error %v does not wrap ErrIncomplete", err)
			}
			return
		}
		again, err := ParseAuthorizationV3(AuthorizationV3(a.AccessKeyID, a.SignedHeaders, a.Signature))
		if err != nil || again.AccessKeyID != a.AccessKeyID || again.Signature != a.Signature ||
			strings.Join(again.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

// TestCreateTokenVector is the NLS CreateToken example of the official documentation (vendors
// part 2, A.4).
func TestCreateTokenVector(t *testing.T) {
	t.Parallel()
	ts, _ := time.Parse(time.RFC3339, "2019-04-18T08:32:31Z")
	p := CreateTokenParams("my_access_key_id", "my_access_key_secret", ts, "b924c8c3-6d03-4c5d-ad36-d984d3116788")
	if got := p.Get("Signature"); got != "hHq4yNsPitlfDJ2L0nQPdugdEzM=" {
		t.Fatalf("signature %s, string to sign %s", got, StringToSignV1("GET", p))
	}
}
