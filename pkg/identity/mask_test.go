package identity

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   ID
		want string
	}{
		{name: "cn mobile", id: ID{Phone, "+8613800138000"}, want: "+86 138****8000"},
		{name: "cn landline 10 national digits", id: ID{Phone, "+861012345678"}, want: "+86 10****5678"},
		{name: "cn landline 11 national digits", id: ID{Phone, "+8675512345678"}, want: "+86 755****5678"},
		{name: "us", id: ID{Phone, "+14155552671"}, want: "+1 41****2671"},
		{name: "hk 8 digits", id: ID{Phone, "+85251234567"}, want: "+852 ****4567"},
		{name: "sg 8 digits", id: ID{Phone, "+6591234567"}, want: "+65 ****4567"},
		{name: "tw mobile", id: ID{Phone, "+886912345678"}, want: "+886 9****5678"},
		{name: "gb", id: ID{Phone, "+447700900123"}, want: "+44 77****0123"},
		{name: "russia zone 7", id: ID{Phone, "+79161234567"}, want: "+7 91****4567"},
		{name: "long national number", id: ID{Phone, "+491234567890123"}, want: "+49 123******0123"},
		{name: "short national number", id: ID{Phone, "+29012345"}, want: "+290 ****5"},
		{name: "phone not normalized", id: ID{Phone, "138 0013 8000"}, want: "138 …00"},
		{name: "phone short garbage", id: ID{Phone, "12345"}, want: "*****"},
		{name: "email", id: ID{Email, "jane@example.com"}, want: "j***@example.com"},
		{name: "email one-letter local", id: ID{Email, "j@example.com"}, want: "***@example.com"},
		{name: "email unicode local", id: ID{Email, "王小明@例子.公司"}, want: "王***@例子.公司"},
		{name: "email without at", id: ID{Email, "janeexample.com"}, want: "jane…om"},
		{name: "email empty local", id: ID{Email, "@example.com"}, want: "@exa…om"},
		{name: "wechat openid", id: ID{WechatOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, want: "oUpF…6o"},
		{name: "wechat unionid", id: ID{WechatUnionID, "o6_bmasdasdsad6_2sgVt7hMZOPfL"}, want: "o6_b…fL"},
		{name: "wecom external userid", id: ID{WecomExternalUserID, "wmqfasd1e1927831123109rBAAAA"}, want: "wmqf…AA"},
		{name: "douyin openid", id: ID{DouyinOpenID, "_000QadFMhmU1jNCI3JdPnyVDL6XavC70dFy"}, want: "_000…Fy"},
		{name: "kuaishou openid", id: ID{KuaishouOpenID, "f19a2b3c4d5e6f7a8b9c0d1e2f3a4b5c"}, want: "f19a…5c"},
		{name: "weibo uid 10 chars", id: ID{WeiboUID, "1404376560"}, want: "1404…60"},
		{name: "web visitor", id: ID{WebVisitor, "v_01HZX3K8Q4W2E9R7T5Y6U1I0OP"}, want: "v_01…OP"},
		{name: "crm id short", id: ID{CRMID, "C-10023"}, want: "*******"},
		{name: "member id 9 chars starred", id: ID{MemberID, "M00123456"}, want: "*********"},
		{name: "member id unicode", id: ID{MemberID, "会员号码-00420042"}, want: "会员号码…42"},
		{name: "unknown kind", id: ID{"line_userid", "U4af4980629"}, want: "U4af…29"},
		{name: "empty value", id: ID{WechatOpenID, ""}, want: ""},
		{name: "zero id", id: ID{}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Mask(tc.id); got != tc.want {
				t.Errorf("Mask(%#v) = %q; want %q", tc.id, got, tc.want)
			}
		})
	}
}

// Mask of a normalized phone never shows the whole national number: at least four digits are
// starred and the country code is kept.
func TestMaskPhoneHidesDigits(t *testing.T) {
	t.Parallel()
	for _, tc := range phoneCases {
		v, err := NormalizePhone(tc.raw, tc.region)
		if err != nil {
			continue
		}
		m := Mask(ID{Phone, v})
		if n := strings.Count(m, "*"); n < minMaskedDigits {
			t.Errorf("Mask(%q) = %q hides %d digits; want at least %d", v, m, n, minMaskedDigits)
		}
		cc, _, ok := strings.Cut(m, " ")
		if !ok || !strings.HasPrefix(v, cc) {
			t.Errorf("Mask(%q) = %q does not start with the country code", v, m)
		}
		if visible := strings.Count(m, "") - 1 - strings.Count(m, "*") - 1 - len(cc); visible > 7 {
			t.Errorf("Mask(%q) = %q shows %d national digits; want at most 7", v, m, visible)
		}
	}
}

// TestMaskIsFrozen: the masks of Indexed IDs are part of the unifier's stored keys; a change
// here changes the keys of stored identities and needs a store migration (see Indexed).
func TestMaskIsFrozen(t *testing.T) {
	t.Parallel()
	for in, want := range map[ID]string{
		{Kind: Phone, Value: "+8613800138000"}:     "+86 138****8000",
		{Kind: Phone, Value: "+85251234567"}:       "+852 ****4567",
		{Kind: Email, Value: "jane@example.com"}:   "j***@example.com",
		{Kind: CRMID, Value: "0035g00000XyZ12AAB"}: "0035…AB",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestIndexed(t *testing.T) {
	t.Parallel()
	id := Indexed(Phone, "pS4cZkq6sO7Y2Z0m1nXh7A", "+86 138****8000")
	idx, masked, ok := id.IsIndexed()
	if !ok || idx != "pS4cZkq6sO7Y2Z0m1nXh7A" || masked != "+86 138****8000" || Mask(id) != masked {
		t.Fatalf("IsIndexed(%q) = %q, %q, %v", id.Value, idx, masked, ok)
	}
	for _, v := range []string{"+8613800138000", "~short +86", "", "~pS4cZkq6sO7Y2Z0m1nXh7A+86"} {
		if _, _, ok := (ID{Kind: Phone, Value: v}).IsIndexed(); ok {
			t.Errorf("%q reads as indexed", v)
		}
	}
}
