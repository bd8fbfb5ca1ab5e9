package sfexpress_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
)

// vectors.md §7.1 (VERIFIED, official worked example) and §7.2 (简易MD5, SELF-COMPUTED).
const (
	vecMsgData   = `{"language":"zh-CN","orderId":"QIAO-20200618-004"}`
	vecTimestamp = "12312334453453"
	vecCheckWord = "fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci"
	vecEncoded   = "%7B%22language%22%3A%22zh-CN%22%2C%22orderId%22%3A%22QIAO-20200618-004%22%7D12312334453453fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci"
	vecDigest    = "IIKJtuLVzoFTu4kHI8M8vA=="
	vecSimple    = "OwYXm3XG9fjHK7A+/t7Ckw=="
	// The English doc's mismatched inputs (JSON with spaces, another secret) give another value.
	vecEnglishMsgData  = `{"language": "zh-CN", "orderId": "QIAO-20200618-004"}`
	vecEnglishSecret   = "pp3eOwGR2jMZTl313aSNCybEEycG5ORNP"
	vecEnglishExpected = "9lfdwc7EnWooftr5ys7acA=="
)

func TestOfficialVector(t *testing.T) {
	t.Parallel()
	if got := sfexpress.JavaURLEncode(vecMsgData + vecTimestamp + vecCheckWord); got != vecEncoded {
		t.Fatalf("JavaURLEncode:\n got %s\nwant %s", got, vecEncoded)
	}
	if got := sfexpress.Digest(vecMsgData, vecTimestamp, vecCheckWord); got != vecDigest {
		t.Fatalf("Digest = %s, want %s", got, vecDigest)
	}
	if !sfexpress.VerifyDigest(vecMsgData, vecTimestamp, vecCheckWord, vecDigest) {
		t.Fatal("VerifyDigest rejected the official vector")
	}
	if sfexpress.VerifyDigest(vecMsgData, vecTimestamp, vecCheckWord+"x", vecDigest) {
		t.Fatal("VerifyDigest accepted a wrong checkword")
	}
	if got := sfexpress.SimpleDigest(vecMsgData, vecTimestamp, vecCheckWord); got != vecSimple {
		t.Fatalf("SimpleDigest = %s, want %s", got, vecSimple)
	}
}

func TestEnglishDocWarningVector(t *testing.T) {
	t.Parallel()
	// The English doc prints these inputs next to IIKJ…; they really give 9lfd…
	got := sfexpress.Digest(vecEnglishMsgData, vecTimestamp, vecEnglishSecret)
	if got != vecEnglishExpected {
		t.Fatalf("Digest = %s, want %s", got, vecEnglishExpected)
	}
}

func TestJavaURLEncode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"unreserved", "azAZ09.-*_", "azAZ09.-*_"},
		{"space is plus", "a b", "a+b"},
		{"tilde escaped", "~", "%7E"},
		{"plus escaped", "+", "%2B"},
		{"chinese is utf8 upper hex", "顺丰", "%E9%A1%BA%E4%B8%B0"},
		{"slash and colon", "/:", "%2F%3A"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := sfexpress.JavaURLEncode(tc.in); got != tc.want {
				t.Fatalf("JavaURLEncode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	msg := []byte(`{"language":"zh-CN","trackingType":"1","trackingNumber":["SF1234567890123"],"methodType":"1"}`)
	ts := time.UnixMilli(1725321547000)
	r := sfexpress.NewRequest("OMNIBUS", "secret-check", "req-1", sfexpress.ServiceRouteQuery, msg, ts)
	if r.Timestamp != "1725321547000" {
		t.Fatalf("timestamp %s", r.Timestamp)
	}
	form, err := url.ParseQuery(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, err := sfexpress.ParseRequest(form)
	if err != nil {
		t.Fatal(err)
	}
	if got != r {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if !sfexpress.VerifyDigest(got.MsgData, got.Timestamp, "secret-check", got.MsgDigest) {
		t.Fatal("digest of a built request does not verify")
	}
	form.Del(sfexpress.FieldMsgDigest)
	if _, err := sfexpress.ParseRequest(form); !errors.Is(err, sfexpress.ErrMissingParam) {
		t.Fatalf("no digest: err %v, want ErrMissingParam", err)
	}
	form.Set(sfexpress.FieldMsgDigest, "x")
	form.Del(sfexpress.FieldPartnerID)
	if _, err := sfexpress.ParseRequest(form); !errors.Is(err, sfexpress.ErrMissingParam) || !strings.Contains(err.Error(), "partnerID") {
		t.Fatalf("no partnerID: err %v", err)
	}
}

// docResponse is the route query answer of the vendor doc (README §7.3), verbatim.
const docResponse = `{"apiErrorMsg":"","apiResponseID":"000173271968963FA47C03E68000103F","apiResultCode":"A1000",
 "apiResultData":"{\"success\":true,\"errorCode\":\"S0000\",\"errorMsg\":null,\"msgData\":{\"routeResps\":[{\"mailNo\":\"SF1011603494291\",\"routes\":[{\"acceptAddress\":\"深圳市\",\"acceptTime\":\"2024-09-03 07:59:07\",\"remark\":\"顺丰速运 已收取快件\",\"opCode\":\"54\",\"firstStatusCode\":\"1\",\"firstStatusName\":\"已揽收\",\"secondaryStatusCode\":\"101\",\"secondaryStatusName\":\"已揽收\"}]}]}}"}`

func TestParseRouteResponseDoc(t *testing.T) {
	t.Parallel()
	resp, routes, err := sfexpress.ParseRouteResponse([]byte(docResponse))
	if err != nil {
		t.Fatal(err)
	}
	if resp.APIResponseID != "000173271968963FA47C03E68000103F" || len(routes) != 1 || routes[0].MailNo != "SF1011603494291" {
		t.Fatalf("got %+v %+v", resp, routes)
	}
	r := routes[0].Routes[0]
	if r.OpCode != "54" || r.AcceptAddress != "深圳市" || r.FirstStatusName != "已揽收" || r.SecondaryStatusCode != "101" {
		t.Fatalf("route %+v", r)
	}
	at, err := sfexpress.ParseAcceptTime(r.AcceptTime)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 9, 2, 23, 59, 7, 0, time.UTC); !at.Equal(want) {
		t.Fatalf("acceptTime %s, want %s", at.UTC(), want)
	}
}

func TestParseRouteResponseErrors(t *testing.T) {
	t.Parallel()
	bizErr, _ := sfexpress.EncodeBusinessError("r1", sfexpress.BizTooMany, "查询单号超过最大数量10")
	for _, tc := range []struct {
		name      string
		body      string
		want      error
		temporary bool
	}{
		{"bad digest", string(sfexpress.EncodePlatformError("r1", sfexpress.CodeBadDigest, "数字签名无效")), sfexpress.ErrBadDigest, false},
		{"rate limited", string(sfexpress.EncodePlatformError("r1", sfexpress.CodeRateLimited, "流量超限")), sfexpress.ErrRateLimited, true},
		{"system", string(sfexpress.EncodePlatformError("r1", sfexpress.CodeSystem, "系统异常")), sfexpress.ErrSystem, true},
		{"too many numbers", string(bizErr), sfexpress.ErrTooMany, false},
		{"not json", `<html>502</html>`, sfexpress.ErrMalformed, false},
		{"no code", `{"apiResultData":"{}"}`, sfexpress.ErrMalformed, false},
		{"result data not json", `{"apiResultCode":"A1000","apiResultData":"nope"}`, sfexpress.ErrMalformed, false},
		{"success without msgData", `{"apiResultCode":"A1000","apiResultData":"{\"success\":true,\"errorCode\":\"S0000\"}"}`, sfexpress.ErrMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := sfexpress.ParseRouteResponse([]byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			var se *sfexpress.Error
			if errors.As(err, &se) && se.Temporary() != tc.temporary {
				t.Fatalf("Temporary() = %v, want %v", se.Temporary(), tc.temporary)
			}
		})
	}
}

func TestEncodeRouteResponseRoundTrip(t *testing.T) {
	t.Parallel()
	in := []sfexpress.RouteResp{
		{MailNo: "SF1234567890123", Routes: []sfexpress.Route{{AcceptAddress: "深圳市", AcceptTime: "2024-09-03 07:59:07", Remark: "顺丰速运 已收取快件", OpCode: "50"}}},
		{MailNo: "SF0000000000000"},
	}
	body, err := sfexpress.EncodeRouteResponse("rid", in)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := sfexpress.ParseRouteResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Routes[0].Remark != "顺丰速运 已收取快件" || len(out[1].Routes) != 0 {
		t.Fatalf("round trip %+v", out)
	}
}

func TestRouteQueryValidate(t *testing.T) {
	t.Parallel()
	many := make([]string, 11)
	for i := range many {
		many[i] = "SF1"
	}
	for _, tc := range []struct {
		name string
		q    sfexpress.RouteQuery
		want string
	}{
		{"ok", sfexpress.NewRouteQuery([]string{"SF1"}, ""), ""},
		{"none", sfexpress.NewRouteQuery(nil, ""), sfexpress.BizNoNumber},
		{"eleven", sfexpress.NewRouteQuery(many, ""), sfexpress.BizTooMany},
		{"bad method", sfexpress.RouteQuery{TrackingNumber: []string{"SF1"}, MethodType: "3"}, sfexpress.BizBadMethod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.q.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && err.Code != tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzJavaURLEncode checks the encoder against two oracles: the stdlib decoder inverts it, and
// for valid UTF-8 it equals url.QueryEscape with Java's two differences ("*" kept, "~" escaped).
func FuzzJavaURLEncode(f *testing.F) {
	f.Add(vecMsgData + vecTimestamp + vecCheckWord)
	f.Add("顺丰 速运*~+/")
	f.Add("\xff\x00")
	f.Fuzz(func(t *testing.T, s string) {
		enc := sfexpress.JavaURLEncode(s)
		dec, err := url.QueryUnescape(enc)
		if err != nil || dec != s {
			t.Fatalf("QueryUnescape(JavaURLEncode(%q)) = %q, %v", s, dec, err)
		}
		if utf8.ValidString(s) {
			want := strings.NewReplacer("%2A", "*", "~", "%7E").Replace(url.QueryEscape(s))
			if enc != want {
				t.Fatalf("JavaURLEncode(%q) = %q, oracle %q", s, enc, want)
			}
		}
	})
}

// FuzzParseRouteResponse: any body either parses into waybills that all have a mailNo, or fails
// with an *Error or ErrMalformed; it never panics.
func FuzzParseRouteResponse(f *testing.F) {
	f.Add([]byte(docResponse))
	f.Add(sfexpress.EncodePlatformError("r", sfexpress.CodeBadDigest, "数字签名无效"))
	b, _ := sfexpress.EncodeBusinessError("r", sfexpress.BizNoNumber, "x")
	f.Add(b)
	f.Add([]byte(`{"apiResultCode":"A1000","apiResultData":"{\"success\":true,\"errorCode\":\"S0000\",\"msgData\":{\"routeResps\":[{}]}}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, routes, err := sfexpress.ParseRouteResponse(body)
		if err != nil {
			var se *sfexpress.Error
			if !errors.As(err, &se) && !errors.Is(err, sfexpress.ErrMalformed) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		for _, r := range routes {
			if r.MailNo == "" {
				t.Fatal("waybill without mailNo accepted")
			}
		}
	})
}

// FuzzParseRequest: the simulator's request parser never panics, and a parsed request always has
// every required field.
func FuzzParseRequest(f *testing.F) {
	r := sfexpress.NewRequest("P", "c", "id", sfexpress.ServiceRouteQuery, []byte(vecMsgData), time.UnixMilli(1))
	f.Add(r.Encode())
	f.Add("partnerID=&msgData=%7B")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		got, err := sfexpress.ParseRequest(form)
		if err == nil && (got.PartnerID == "" || got.MsgData == "" || got.Timestamp == "" || (got.MsgDigest == "" && got.AccessToken == "")) {
			t.Fatalf("incomplete request accepted: %+v", got)
		}
	})
}
