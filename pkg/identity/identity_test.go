package identity

import (
	"errors"
	"strings"
	"testing"
)

type normalizeCase struct {
	name   string
	n      Normalizer
	kind   string
	raw    string
	want   ID
	errHas string
}

// normalizeCases covers kinds and vendor ids; phone and email rules have their own tables.
var normalizeCases = []normalizeCase{
	{name: "phone default region CN", kind: Phone, raw: "138 0013 8000", want: ID{Phone, "+8613800138000"}},
	{name: "phone region US", n: Normalizer{DefaultRegion: "US"}, kind: Phone, raw: "(415) 555-2671", want: ID{Phone, "+14155552671"}},
	{name: "phone region HK", n: Normalizer{DefaultRegion: "HK"}, kind: Phone, raw: "5123 4567", want: ID{Phone, "+85251234567"}},
	{name: "phone national in any region", n: Normalizer{DefaultRegion: "JP"}, kind: Phone, raw: "090-1234-5678", want: ID{Phone, "+819012345678"}},
	{name: "phone unsupported region with cc", n: Normalizer{DefaultRegion: "JP"}, kind: Phone, raw: "+81 90-1234-5678", want: ID{Phone, "+819012345678"}},
	{name: "email", kind: Email, raw: " Jane@Example.com ", want: ID{Email, "jane@example.com"}},
	{name: "email invalid", kind: Email, raw: "jane", errHas: "email"},

	{name: "wechat openid case kept", kind: WechatOpenID, raw: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", want: ID{WechatOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}},
	{name: "wechat openid trimmed", kind: WechatOpenID, raw: "  oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\n", want: ID{WechatOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}},
	{name: "wechat unionid", kind: WechatUnionID, raw: "o6_bmasdasdsad6_2sgVt7hMZOPfL", want: ID{WechatUnionID, "o6_bmasdasdsad6_2sgVt7hMZOPfL"}},
	{name: "wecom external userid", kind: WecomExternalUserID, raw: "wmqfasd1e1927831123109rBAAAA", want: ID{WecomExternalUserID, "wmqfasd1e1927831123109rBAAAA"}},
	{name: "douyin openid", kind: DouyinOpenID, raw: "_000QadFMhmU1jNCI3JdPnyVDL6XavC70dFy", want: ID{DouyinOpenID, "_000QadFMhmU1jNCI3JdPnyVDL6XavC70dFy"}},
	{name: "kuaishou openid", kind: KuaishouOpenID, raw: "f19a2b3c4d5e6f7a8b9c0d1e2f3a4b5c", want: ID{KuaishouOpenID, "f19a2b3c4d5e6f7a8b9c0d1e2f3a4b5c"}},
	{name: "weibo uid", kind: WeiboUID, raw: "1404376560", want: ID{WeiboUID, "1404376560"}},
	{name: "web visitor", kind: WebVisitor, raw: "v_01HZX3K8Q4W2E9R7T5Y6U1I0OP", want: ID{WebVisitor, "v_01HZX3K8Q4W2E9R7T5Y6U1I0OP"}},
	{name: "crm id inner space kept", kind: CRMID, raw: " ACME 000123 ", want: ID{CRMID, "ACME 000123"}},
	{name: "member id unicode", kind: MemberID, raw: "会员-0042", want: ID{MemberID, "会员-0042"}},
	{name: "unknown vendor kind", kind: "line_userid", raw: "U4af4980629", want: ID{"line_userid", "U4af4980629"}},
	{name: "max kind length", kind: "k" + strings.Repeat("_", 39), raw: "x", want: ID{"k" + strings.Repeat("_", 39), "x"}},
	{name: "vendor id 256 bytes", kind: CRMID, raw: strings.Repeat("a", 256), want: ID{CRMID, strings.Repeat("a", 256)}},

	{name: "empty kind", kind: "", raw: "x", errHas: "kind"},
	{name: "upper-case kind", kind: "Phone", raw: "13800138000", errHas: "kind"},
	{name: "kind starting with digit", kind: "1x", raw: "x", errHas: "kind"},
	{name: "kind with dash", kind: "wechat-openid", raw: "x", errHas: "kind"},
	{name: "kind with space", kind: " phone", raw: "13800138000", errHas: "kind"},
	{name: "kind too long", kind: "k" + strings.Repeat("_", 40), raw: "x", errHas: "kind"},
	{name: "vendor id empty", kind: WechatOpenID, raw: "", errHas: "empty"},
	{name: "vendor id blank", kind: WechatOpenID, raw: " \t\n", errHas: "empty"},
	{name: "vendor id too long", kind: CRMID, raw: strings.Repeat("a", 257), errHas: "longer than 256"},
	{name: "vendor id invalid utf-8", kind: WebVisitor, raw: "v_\xc3\x28", errHas: "UTF-8"},
	{name: "vendor id control char", kind: WechatOpenID, raw: "oUpF8u\x00MuAJO", errHas: "control"},
	{name: "vendor id inner newline", kind: CRMID, raw: "ACME\n000123", errHas: "control"},
	{name: "vendor id DEL", kind: CRMID, raw: "ACME\x7f", errHas: "control"},
	{name: "vendor id zero-width space", kind: WechatOpenID, raw: "oUpF8u\u200bMuAJO", errHas: "invisible"},
	{name: "vendor id byte-order mark", kind: CRMID, raw: "\ufeffACME000123", errHas: "invisible"},
	{name: "vendor id bidi override", kind: MemberID, raw: "M\u202e0042", errHas: "invisible"},
	{name: "vendor id line separator", kind: MemberID, raw: "M\u20280042", errHas: "control"},
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range normalizeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.n.Normalize(tc.kind, tc.raw)
			if tc.errHas != "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Normalize(%q, %q) = %v, %v; want an error wrapping ErrInvalid", tc.kind, tc.raw, got, err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not mention %q", err, tc.errHas)
				}
				if got != (ID{}) {
					t.Errorf("got %v alongside the error; want the zero ID", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q, %q): %v", tc.kind, tc.raw, err)
			}
			if got != tc.want {
				t.Errorf("Normalize(%q, %q) = %#v; want %#v", tc.kind, tc.raw, got, tc.want)
			}
		})
	}
}

// Property: Normalize is idempotent. Every accepted input of every table normalizes to a value
// that normalizes to itself, whatever the default region.
func TestNormalizeIdempotent(t *testing.T) {
	t.Parallel()
	type input struct {
		n         Normalizer
		kind, raw string
	}
	var inputs []input
	for _, tc := range phoneCases {
		inputs = append(inputs, input{Normalizer{tc.region}, Phone, tc.raw})
	}
	for _, tc := range emailCases {
		inputs = append(inputs, input{Normalizer{}, Email, tc.raw})
	}
	for _, tc := range normalizeCases {
		inputs = append(inputs, input{tc.n, tc.kind, tc.raw})
	}
	accepted := 0
	for _, in := range inputs {
		first, err := in.n.Normalize(in.kind, in.raw)
		if err != nil {
			continue
		}
		accepted++
		for _, region := range []string{in.n.DefaultRegion, "CN", "US", "GB", "ZZ"} {
			again, err := Normalizer{region}.Normalize(in.kind, first.Value)
			if err != nil || again != first {
				t.Errorf("Normalize(%q, %q) = %v, but normalizing that again in region %q gives %v, %v",
					in.kind, in.raw, first, region, again, err)
			}
		}
	}
	if accepted < 80 {
		t.Fatalf("only %d accepted inputs: the tables lost their success cases", accepted)
	}
}

func TestIDString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   ID
		want string
	}{
		{name: "phone", id: ID{Phone, "+8613800138000"}, want: "phone:+8613800138000"},
		{name: "email", id: ID{Email, "jane@example.com"}, want: "email:jane@example.com"},
		{name: "openid", id: ID{WechatOpenID, "oUpF8uMuAJO"}, want: "wechat_openid:oUpF8uMuAJO"},
		{name: "zero", id: ID{}, want: ":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.id.String(); got != tc.want {
				t.Errorf("%#v.String() = %q; want %q", tc.id, got, tc.want)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	known := []string{Phone, Email, WechatOpenID, WechatUnionID, WecomExternalUserID, DouyinOpenID,
		KuaishouOpenID, WeiboUID, WebVisitor, CRMID, MemberID}
	want := []string{"phone", "email", "wechat_openid", "wechat_unionid", "wecom_external_userid",
		"douyin_openid", "kuaishou_openid", "weibo_uid", "web_visitor", "crm_id", "member_id"}
	for i, k := range known {
		if k != want[i] {
			t.Errorf("kind constant %d = %q; want %q (DESIGN.md §4)", i, k, want[i])
		}
		if !ValidKind(k) || !KnownKind(k) {
			t.Errorf("ValidKind(%q) = %v, KnownKind = %v; want both true", k, ValidKind(k), KnownKind(k))
		}
	}
	if KnownKind("line_userid") || !ValidKind("line_userid") {
		t.Error("line_userid: want valid but not known")
	}
}
