package salesforce

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// vectors.md §6.1 (SELF-COMPUTED with the documented rule).
func TestTokenSignatureVector(t *testing.T) {
	t.Parallel()
	const (
		secret   = "3F1B0C9E5D7A2B4C"
		id       = "https://login.salesforce.com/id/00Dxx0000000123/005xx000000456"
		issuedAt = "1699999999999"
		want     = "ZhXmTPC+6GxYeht3MxCBGkn5ME3tzlf3W5EzIeWYF0E="
	)
	if got := TokenSignature(secret, id, issuedAt); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if err := VerifyTokenSignature(secret, id, issuedAt, want); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][4]string{
		"other secret":    {"3F1B0C9E5D7A2B4D", id, issuedAt, want},
		"tampered id":     {secret, strings.Replace(id, "456", "457", 1), issuedAt, want},
		"other issued_at": {secret, id, "1699999999998", want},
		"not base64":      {secret, id, issuedAt, "%%%"},
		"missing":         {secret, id, "", want},
	} {
		if err := VerifyTokenSignature(c[0], c[1], c[2], c[3]); !errors.Is(err, ErrTokenSignature) {
			t.Errorf("%s: err %v, want ErrTokenSignature", name, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		want   error
		code   string
	}{
		{"expired session", 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, ErrInvalidSession, CodeInvalidSession},
		{"malformed", 400, `[{"message":"unexpected token: 'FORM'","errorCode":"MALFORMED_QUERY"}]`, ErrMalformedQuery, CodeMalformedQuery},
		{"limit", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, ErrRequestLimit, CodeRequestLimit},
		{"html gateway page", 502, `<html>Bad Gateway</html>`, nil, CodeUnknownException},
		{"empty list", 500, `[]`, nil, CodeUnknownException},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ParseErrors(tt.status, []byte(tt.body))
			if err.Status != tt.status || err.Code != tt.code {
				t.Fatalf("got %+v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("errors.Is(%v, %v) false", err, tt.want)
			}
			if errors.Is(err, ErrRequestLimit) != (tt.code == CodeRequestLimit) {
				t.Fatal("sentinel matched another code")
			}
		})
	}
}

func TestParseQueryResponse(t *testing.T) {
	t.Parallel()
	// The documented example (vendor reference §6.2), plus a nested relationship field.
	body := `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003RO0000035WQgYAM"},"Id":"003RO0000035WQgYAM","Name":"John Smith","Phone":"(415) 555-1212","Account":{"attributes":{"type":"Account"},"Name":"Acme"},"Score__c":12.5,"Active__c":true,"Email":null}]}`
	r, err := ParseQueryResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	rec := r.Records[0]
	for path, want := range map[string]string{"Id": "003RO0000035WQgYAM", "Phone": "(415) 555-1212",
		"Account.Name": "Acme", "Score__c": "12.5", "Active__c": "true", "Email": "", "Missing": "", "Phone.X": ""} {
		if got := rec.String(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if rec.Type() != "Contact" || r.TotalSize != 1 || !r.Done {
		t.Fatalf("got %+v", r)
	}
	bad := map[string]string{
		"no records":          `{"totalSize":0,"done":true}`,
		"record without type": `{"totalSize":1,"done":true,"records":[{"Id":"1"}]}`,
		"not done, no next":   `{"totalSize":3000,"done":false,"records":[]}`,
		"next on last batch":  `{"totalSize":0,"done":true,"nextRecordsUrl":"/services/data/v60.0/query/01g-2000","records":[]}`,
		"size below records":  `{"totalSize":0,"done":true,"records":[{"attributes":{"type":"Contact"}}]}`,
		"error list":          `[{"message":"x","errorCode":"MALFORMED_QUERY"}]`,
		"trailing":            `{"totalSize":0,"done":true,"records":[]} {}`,
		"null record":         `{"totalSize":1,"done":true,"records":[null]}`,
	}
	for name, b := range bad {
		if _, err := ParseQueryResponse([]byte(b)); !errors.Is(err, ErrMalformedBody) {
			t.Errorf("%s: err %v, want ErrMalformedBody", name, err)
		}
	}
	next := `{"totalSize":3000,"done":false,"nextRecordsUrl":"/services/data/v60.0/query/01gRO0000016PIAYA2-2000","records":[]}`
	if r, err := ParseQueryResponse([]byte(next)); err != nil || r.NextRecordsURL == "" {
		t.Fatalf("paged response: %v %+v", err, r)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"zhang.wei@example.cn":  `'zhang.wei@example.cn'`,
		"o'brien@example.com":   `'o\'brien@example.com'`,
		`back\slash`:            `'back\\slash'`,
		"x' OR Name != '":       `'x\' OR Name != \''`,
		"line\nbreak\t\"q\"":    `'line\nbreak\t\"q\"'`,
		"张伟":                    `'张伟'`,
		"100%_match":            `'100%_match'`,
		`\' OR Id != null OR '`: `'\\\' OR Id != null OR \''`,
	} {
		got, err := Quote(in)
		if err != nil || got != want {
			t.Errorf("Quote(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"nul\x00", "bell\x07", "del\x7f", "bad\xff"} {
		if _, err := Quote(in); !errors.Is(err, ErrUnquotable) {
			t.Errorf("Quote(%q) err %v, want ErrUnquotable", in, err)
		}
	}
}

func TestParseSOQL(t *testing.T) {
	t.Parallel()
	q, err := ParseSOQL(`select Id, Account.Name FROM Contact where (Phone IN ('1', '2') or MobilePhone = '3') AND NOT Email LIKE '%\_x' AND Age__c >= 21 and Active__c != false ORDER BY LastModifiedDate DESC NULLS LAST, Id LIMIT 5`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Fields, []string{"Id", "Account.Name"}) || q.Object != "Contact" || q.Limit != 5 ||
		!reflect.DeepEqual(q.OrderBy, []Order{{"LastModifiedDate", true}, {"Id", false}}) {
		t.Fatalf("got %+v", q)
	}
	and, ok := q.Where.(*And)
	if !ok || len(and.Terms) != 4 {
		t.Fatalf("where %#v", q.Where)
	}
	if not, ok := and.Terms[1].(*Not); !ok || not.X.(*Cmp).Value.Str != `%\_x` {
		t.Fatalf("LIKE term %#v", and.Terms[1])
	}
	malformed := []string{
		"", "SELECT FROM Contact", "SELECT Id FORM Contact", "SELECT Id FROM Contact WHERE",
		"SELECT Id FROM Contact WHERE Email = 'x", "SELECT Id FROM Contact WHERE Email = 'a\\qb'",
		"SELECT Id FROM Contact WHERE Email = 'a\\_b'", "SELECT Id FROM Contact WHERE Email = 'a' OR",
		"SELECT Id FROM Contact WHERE Email IN ()", "SELECT Id FROM Contact LIMIT -1", "SELECT Id FROM Contact LIMIT x",
		"SELECT Id FROM Contact WHERE Email = 'a' extra", "SELECT Id, FROM Contact", "SELECT Id FROM Contact WHERE (Email = 'a'",
		"SELECT Id FROM Contact WHERE Email ! 'a'", "SELECT Id FROM Contact; DELETE", "SELECT Id FROM Account.Name",
	}
	for _, s := range malformed {
		if _, err := ParseSOQL(s); !errors.Is(err, ErrMalformedQuery) {
			t.Errorf("ParseSOQL(%q) err %v, want MALFORMED_QUERY", s, err)
		}
	}
}

func TestContactQuery(t *testing.T) {
	t.Parallel()
	fields := append(append([]string{}, ContactFields...), "Member_Number__c")
	soql, err := ContactQuery(fields, "phone", "+8613800138000", 5)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseSOQL(soql)
	if err != nil {
		t.Fatalf("%s: %v", soql, err)
	}
	or := q.Where.(*Or)
	if len(or.Terms) != 2 || or.Terms[0].(*In).Field != "Phone" || or.Terms[1].(*In).Field != "MobilePhone" {
		t.Fatalf("where %#v", q.Where)
	}
	var got []string
	for _, v := range or.Terms[0].(*In).Values {
		got = append(got, v.Str)
	}
	if !reflect.DeepEqual(got, PhoneVariants("+8613800138000")) {
		t.Fatalf("variants %q", got)
	}
	soql, err = ContactQuery(fields, "email", "o'brien@example.com", 5)
	if err != nil {
		t.Fatal(err)
	}
	if q, err = ParseSOQL(soql); err != nil || q.Where.(*Cmp).Value.Str != "o'brien@example.com" {
		t.Fatalf("%s: %v", soql, err)
	}
	if _, err := ContactQuery(fields, "wechat_openid", "x", 5); !errors.Is(err, ErrLookupKind) {
		t.Fatalf("err %v", err)
	}
	if _, err := ContactQuery([]string{"Id", "Name FROM User --"}, "email", "a@b.c", 5); err == nil {
		t.Fatal("accepted a bad field name")
	}
}

func TestPhones(t *testing.T) {
	t.Parallel()
	for _, e164 := range []string{"+8613800138000", "+862112345678", "+14155551212", "+442079460000"} {
		vs := PhoneVariants(e164)
		if len(vs) < 2 || vs[0] != e164 {
			t.Fatalf("%s: variants %q", e164, vs)
		}
		region := "CN"
		if strings.HasPrefix(e164, "+1") {
			region = "US"
		}
		for _, v := range vs {
			if got, ok := NormalizePhone(v, region); !ok || got != e164 {
				t.Errorf("NormalizePhone(%q) = %q %v, want %s", v, got, ok, e164)
			}
		}
	}
	for raw, want := range map[string]string{
		"138 0013 8000 转 12": "+8613800138000", "(415) 555-1212 x12": "", "１３８００１３８０００": "+8613800138000",
		"021-1234-5678": "+862112345678", "abc": "", "12345": "", "+0 123 4567 890": "",
	} {
		got, ok := NormalizePhone(raw, "CN")
		if got != want || ok != (want != "") {
			t.Errorf("NormalizePhone(%q) = %q %v, want %q", raw, got, ok, want)
		}
	}
	if got, _ := NormalizePhone("(415) 555-1212 x12", "US"); got != "+14155551212" {
		t.Errorf("US with extension: %q", got)
	}
	if PhoneVariants("13800138000") != nil || PhoneVariants("+86 138") != nil {
		t.Fatal("variants of a non-E.164 value")
	}
}

func TestValidAPIVersion(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{"v60.0": true, "v9.0": false, "v100.0": true, "60.0": false, "v60": false, "v60.0/../x": false} {
		if ValidAPIVersion(v) != ok {
			t.Errorf("ValidAPIVersion(%q) != %v", v, ok)
		}
	}
	if QueryPath("v60.0") != "/services/data/v60.0/query" || http.MethodGet != "GET" {
		t.Fatal(QueryPath("v60.0"))
	}
}

// FuzzQuote: any quotable value survives Quote → ParseSOQL as exactly one literal with the same
// value; the query's structure never depends on the value (no injection).
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"zhang.wei@example.cn", "o'brien@example.com", `\' OR Id != null OR '`, `\\'`,
		"x\n\r\t\b\f\"", "张伟", "100%_", `'`, `\`, "a' OR Email LIKE '%", "+8613800138000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit, err := Quote(s)
		if err != nil {
			if !errors.Is(err, ErrUnquotable) {
				t.Fatalf("Quote error %v", err)
			}
			return
		}
		q, err := ParseSOQL("SELECT Id FROM Contact WHERE Email = " + lit + " LIMIT 1")
		if err != nil {
			t.Fatalf("quoted %q does not parse: %v", s, err)
		}
		c, ok := q.Where.(*Cmp)
		if !ok || c.Field != "Email" || c.Op != "=" || c.Value.Kind != ValString || c.Value.Str != s || q.Limit != 1 {
			t.Fatalf("value %q changed the query: %#v", s, q.Where)
		}
	})
}

// FuzzContactQuery: for any email value, the built query parses to exactly one Email comparison
// with that value.
func FuzzContactQuery(f *testing.F) {
	f.Add("email", "o'brien@example.com")
	f.Add("phone", "+8613800138000")
	f.Add("phone", "+14155551212")
	f.Add("email", `x\' OR Name != '`)
	f.Fuzz(func(t *testing.T, kind, value string) {
		soql, err := ContactQuery(ContactFields, kind, value, 5)
		if err != nil {
			return
		}
		q, err := ParseSOQL(soql)
		if err != nil {
			t.Fatalf("%s: %v", soql, err)
		}
		if !reflect.DeepEqual(q.Fields, ContactFields) || q.Object != "Contact" || q.Limit != 5 {
			t.Fatalf("structure changed: %+v", q)
		}
		switch w := q.Where.(type) {
		case *Cmp:
			if kind != "email" || w.Value.Str != value {
				t.Fatalf("where %#v for %s %q", w, kind, value)
			}
		case *Or:
			if kind != "phone" || len(w.Terms) != 2 || w.Terms[0].(*In).Values[0].Str != value {
				t.Fatalf("where %#v for %s %q", w, kind, value)
			}
		default:
			t.Fatalf("where %#v", q.Where)
		}
	})
}

// FuzzParseSOQL: the parser never panics, and what it accepts it accepts again after the
// literals are re-quoted (an oracle for the lexer's escape handling).
func FuzzParseSOQL(f *testing.F) {
	f.Add(`SELECT Id, Name FROM Contact WHERE Phone IN ('+8613800138000', '138 0013 8000') OR MobilePhone = '13800138000' ORDER BY LastModifiedDate DESC LIMIT 5`)
	f.Add(`SELECT Id FROM Contact WHERE Email LIKE '%\_%' AND NOT (Age__c < 3.5 OR Active__c = null)`)
	f.Add(`SELECT Id FROM Contact WHERE Name = 'it\'s \\ "x"'`)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseSOQL(s)
		if err != nil {
			var se *SOQLError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a SOQLError", err, err)
			}
			return
		}
		if q.Object == "" || len(q.Fields) == 0 {
			t.Fatalf("accepted %q without object or fields", s)
		}
		var walk func(Expr)
		walk = func(x Expr) {
			switch x := x.(type) {
			case *Or:
				for _, y := range x.Terms {
					walk(y)
				}
			case *And:
				for _, y := range x.Terms {
					walk(y)
				}
			case *Not:
				walk(x.X)
			case *Cmp:
				if x.Value.Kind == ValString && x.Op != "LIKE" && utf8.ValidString(x.Value.Str) {
					if lit, err := Quote(x.Value.Str); err == nil {
						if _, err := ParseSOQL("SELECT Id FROM Contact WHERE F = " + lit); err != nil {
							t.Fatalf("re-quoted %q does not parse: %v", x.Value.Str, err)
						}
					}
				}
			}
		}
		walk(q.Where)
	})
}

// FuzzParseQueryResponse: any body either parses into records with a type or fails with
// ErrMalformedBody; never a panic.
func FuzzParseQueryResponse(f *testing.F) {
	f.Add([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003RO0000035WQgYAM"},"Id":"003RO0000035WQgYAM","Name":"John Smith","Phone":"(415) 555-1212"}]}`))
	f.Add([]byte(`{"totalSize":3000,"done":false,"nextRecordsUrl":"/services/data/v60.0/query/01gRO0000016PIAYA2-2000","records":[]}`))
	f.Add([]byte(`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseQueryResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedBody) {
				t.Fatalf("error %v does not wrap ErrMalformedBody", err)
			}
			_ = ParseErrors(400, b)
			return
		}
		for _, rec := range r.Records {
			if rec.Type() == "" {
				t.Fatal("record without type accepted")
			}
			_ = rec.String("Account.Name")
		}
	})
}

// FuzzNormalizePhone: a normalised phone is valid E.164 and a fixed point; its variants all
// normalise back to it.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+8613800138000", "138 0013 8000", "(415) 555-1212", "0086 138-0013-8000", "021 1234 5678 ext. 3", "+1 (415) 555-1212"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, ok := NormalizePhone(raw, "CN")
		if !ok {
			return
		}
		if !validE164(e) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", raw, e)
		}
		if again, ok := NormalizePhone(e, "CN"); !ok || again != e {
			t.Fatalf("not idempotent: %q → %q → %q", raw, e, again)
		}
		for _, v := range PhoneVariants(e) {
			region := "CN"
			if strings.HasPrefix(e, "+1") {
				region = "US"
			}
			if got, ok := NormalizePhone(v, region); !ok || got != e {
				t.Fatalf("variant %q of %s normalises to %q", v, e, got)
			}
		}
	})
}
