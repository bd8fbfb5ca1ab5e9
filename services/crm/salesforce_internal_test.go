package crm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
)

func testConfig() *Config {
	return &Config{Provider: "salesforce", ClientID: "id", ClientSecret: "3F1B0C9E5D7A2B4C", APIVersion: "v60.0",
		MemberField: "Member_Number__c", VIPField: "VIP_Level__c", PhoneRegion: "CN", TokenTTL: time.Hour,
		Budget: 2 * time.Second, VerifyToken: true}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Identity
		want Identity
		err  error
	}{
		{"e164", Identity{"phone", "+8613800138000"}, Identity{"phone", "+8613800138000"}, nil},
		{"national", Identity{"phone", "138 0013 8000"}, Identity{"phone", "+8613800138000"}, nil},
		{"email case", Identity{"email", " Zhang.Wei@Example.CN "}, Identity{"email", "zhang.wei@example.cn"}, nil},
		{"bad phone", Identity{"phone", "12345"}, Identity{}, ErrQuery},
		{"bad email", Identity{"email", "no-at-sign"}, Identity{}, ErrQuery},
		{"other kind", Identity{"wechat_openid", "o1"}, Identity{}, ErrQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalize(tt.in, "CN")
			if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
				t.Fatalf("normalize(%v) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestMapContact(t *testing.T) {
	t.Parallel()
	body := `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"0035g0000000001AAA","Name":"张伟",
		"Phone":"+86 21 5000 0001","MobilePhone":"138-0013-8000","Email":"Zhang.Wei@Example.CN","Title":"店长","MailingCity":"上海",
		"Account":{"attributes":{"type":"Account"},"Name":"上海星河贸易有限公司"},"Member_Number__c":" M10007919 ","VIP_Level__c":"金卡"}]}`
	r, err := sfwire.ParseQueryResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := mapContact(r.Records[0], Identity{"email", "zhang.wei@example.cn"}, testConfig(), "https://x.my.salesforce.com/lightning/r/Contact/0035g0000000001AAA/view")
	want := Result{Found: true, Identities: []Identity{{"crm_id", "0035g0000000001AAA"}, {"phone", "+8613800138000"},
		{"email", "zhang.wei@example.cn"}, {"member_id", "M10007919"}},
		Profile: map[string]string{"name": "张伟", "company": "上海星河贸易有限公司", "title": "店长", "city": "上海",
			"crm_id": "0035g0000000001AAA", "vip_level": "金卡", "crm_url": "https://x.my.salesforce.com/lightning/r/Contact/0035g0000000001AAA/view"}}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("got  %s\nwant %s", a, b)
	}
}

// FuzzMapContact: whatever record Salesforce returns, the answer built from it is schema-valid
// (the schema is the oracle: identities within bounds, profile values strings).
func FuzzMapContact(f *testing.F) {
	f.Add([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"0035g0000000001AAA","Name":"John Smith","Phone":"(415) 555-1212","Email":"j@example.com","Member_Number__c":12}]}`), "phone", "+14155551212")
	f.Add([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"","Name":null,"MobilePhone":"0086 138 0013 8000","Email":"a@b@c","Account":{"Name":"x"},"VIP_Level__c":true}]}`), "email", "a@b.c")
	f.Fuzz(func(t *testing.T, body []byte, kind, value string) {
		r, err := sfwire.ParseQueryResponse(body)
		if err != nil || len(r.Records) == 0 {
			return
		}
		q, err := normalize(Identity{kind, value}, "CN")
		if err != nil {
			return
		}
		res := mapContact(r.Records[0], q, testConfig(), "")
		found := true
		ans := Answer{CustomerID: "3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13", Query: q, Provider: "salesforce", Found: &found,
			Identities: res.Identities, Profile: res.Profile}
		b, _ := json.Marshal(ans)
		if err := schema.Default().Validate(TypeCompleted, b); err != nil {
			t.Fatalf("answer from %s is not schema-valid: %v\n%s", body, err, b)
		}
	})
}

// A token response whose signature does not match the client secret is refused, and no query is
// made with it.
func TestTokenSignatureChecked(t *testing.T) {
	t.Parallel()
	queries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == sfwire.TokenPath {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(sfwire.TokenResponse{AccessToken: "00D!x", InstanceURL: "http://" + r.Host,
				ID: "https://login.salesforce.com/id/00Dxx0000000123/005xx000000456", TokenType: "Bearer", IssuedAt: "1699999999999",
				Signature: sfwire.TokenSignature("another secret", "https://login.salesforce.com/id/00Dxx0000000123/005xx000000456", "1699999999999")})
			return
		}
		queries++
		http.Error(w, "unexpected", 500)
	}))
	defer srv.Close()
	cfg := testConfig()
	cfg.LoginURL = srv.URL
	mem := &audit.Memory{}
	reg, err := resilience.New(resilience.Options{Service: "crm", Audit: mem})
	if err != nil {
		t.Fatal(err)
	}
	sf, err := newSalesforce(cfg, srv.Client(), reg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sf.Lookup(context.Background(), Identity{"phone", "+8613800138000"})
	if !errors.Is(err, sfwire.ErrTokenSignature) || queries != 0 {
		t.Fatalf("err %v, %d queries", err, queries)
	}
	if code, _ := describe(err, time.Second); code != "token_signature" {
		t.Fatalf("code %s", code)
	}
	// With the check off (an org whose responses carry no signature) the token is used.
	cfg.VerifyToken = false
	reg2, _ := resilience.New(resilience.Options{Service: "crm", Audit: mem})
	sf, _ = newSalesforce(cfg, srv.Client(), reg2)
	if _, err = sf.Lookup(context.Background(), Identity{"phone", "+8613800138000"}); err == nil || queries == 0 {
		t.Fatalf("err %v, %d queries", err, queries)
	}
}
