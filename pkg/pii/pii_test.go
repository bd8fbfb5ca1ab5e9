package pii_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func key(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Sample values that are valid by the scanner's rules.
const (
	mobile   = "13800138000"
	idCard   = "11010519491231002X" // check character X
	bankCard = "6222021234567890128"
)

func TestSampleValuesAreValid(t *testing.T) {
	t.Parallel()
	if c := pii.IDCardCheck(idCard[:17]); c != idCard[17] {
		t.Fatalf("ID check of %s = %c", idCard, c)
	}
	if c := pii.LuhnCheck(bankCard[:18]); c != bankCard[18] {
		t.Fatalf("Luhn check of %s = %c", bankCard, c)
	}
}

func TestMaskers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(string) string
		in   string
		want string
	}{
		{"national mobile", pii.MaskPhone, "13800138000", "138****8000"},
		{"formatted mobile", pii.MaskPhone, "138-0013-8000", "138****8000"},
		{"e164", pii.MaskPhone, "+8613800138000", "+86******8000"},
		{"e164 spaced", pii.MaskPhone, "+86 138 0013 8000", "+86******8000"},
		{"short", pii.MaskPhone, "95338", "****"},
		{"landline", pii.MaskPhone, "010-62345678", "010****5678"},
		{"7 digits", pii.MaskPhone, "6234567", "****4567"},
		{"not a phone", pii.MaskPhone, "call me", "****"},
		{"empty phone", pii.MaskPhone, "", ""},
		{"id card", pii.MaskIDCard, idCard, "110***********002X"},
		{"short id", pii.MaskIDCard, "12345", "*****"},
		{"bank card", pii.MaskBankCard, bankCard, "***************0128"},
		{"bank card spaced", pii.MaskBankCard, "6222 0212 3456 7890 128", "***************0128"},
		{"name zh 3", pii.MaskName, "张三丰", "张**"},
		{"name zh 2", pii.MaskName, "李娜", "李*"},
		{"name 1", pii.MaskName, "王", "*"},
		{"name en", pii.MaskName, "Alice Smith", "A**** *****"},
		{"email", pii.MaskEmail, "alice@example.com", "a***@example.com"},
		{"not an email", pii.MaskEmail, "alice", "****"},
		{"address", pii.MaskAddress, "广东省深圳市南山区科技园1号", "广东省深圳市****"},
	}
	for _, c := range cases {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("%s: mask(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
	if got := pii.Mask(pii.KindSecret, "sk-123"); got != pii.Redacted {
		t.Errorf("secret mask = %q", got)
	}
}

func TestScan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    string
		kinds []pii.Kind
		value []string
	}{
		{"my phone is 13800138000.", []pii.Kind{pii.KindPhone}, []string{mobile}},
		{"tel:+86 138 0013 8000 thanks", []pii.Kind{pii.KindPhone}, []string{"+86 138 0013 8000"}},
		{"call 138-0013-8000 or 13900139000", []pii.Kind{pii.KindPhone, pii.KindPhone}, []string{"138-0013-8000", "13900139000"}},
		{"两个号码 13800138000 13900139000", []pii.Kind{pii.KindPhone, pii.KindPhone}, []string{mobile, "13900139000"}},
		{`{"id_no":"` + idCard + `","card":` + bankCard + `}`, []pii.Kind{pii.KindIDCard, pii.KindBankCard}, []string{idCard, bankCard}},
		{"卡号 6222 0212 3456 7890 128 到账", []pii.Kind{pii.KindBankCard}, []string{"6222 0212 3456 7890 128"}},
		{"mail a.b@example.com.cn now", []pii.Kind{pii.KindEmail}, []string{"a.b@example.com.cn"}},
		// Not personal data: waybills, timestamps, wrong check digits, too long runs.
		{"SF1234567890 at 1732500000000", nil, nil},
		{"110105194912310021", nil, nil},       // bad ID check
		{"6222021234567890123", nil, nil},      // bad Luhn
		{"123456789012345678901234", nil, nil}, // too long
		{"138****8000 +86******8000 110***********002X", nil, nil},
	}
	for _, c := range cases {
		fs := pii.Scan(c.in)
		if len(fs) != len(c.kinds) {
			t.Errorf("Scan(%q) = %+v, want kinds %v", c.in, fs, c.kinds)
			continue
		}
		for i, f := range fs {
			if f.Kind != c.kinds[i] || f.Value != c.value[i] || c.in[f.Start:f.End] != f.Value {
				t.Errorf("Scan(%q)[%d] = %+v, want %s %q", c.in, i, f, c.kinds[i], c.value[i])
			}
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	in := `{"to":"+8613800138000","note":"身份证 ` + idCard + `，卡 ` + bankCard + `","mail":"alice@example.com","waybill":"SF1234567890"}`
	got := pii.Redact(in)
	want := `{"to":"+86******8000","note":"身份证 110***********002X，卡 ***************0128","mail":"a***@example.com","waybill":"SF1234567890"}`
	if got != want {
		t.Fatalf("Redact:\n got %s\nwant %s", got, want)
	}
	if pii.Contains(got) || len(pii.Scan(got)) != 0 {
		t.Fatalf("redacted text still has findings: %+v", pii.Scan(got))
	}
}

// FuzzRedact checks the scanner's contract on arbitrary text: offsets are valid, Redact leaves
// nothing Scan finds, it is idempotent, and it keeps valid UTF-8 valid.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"", mobile, "+86 138 0013 8000", idCard, bankCard, "6222 0212 3456 7890 128",
		`{"phone":"13800138000","id":"11010519491231002X"}`, "13800138000 13900139000",
		"a@b.co@c.de", "x13800138000@example.com", "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
		"138-0013-8000-1", "00861380013800011010519491231002x", "SF1234567890",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fd := range pii.Scan(s) {
			if fd.Start < 0 || fd.End > len(s) || fd.Start >= fd.End || s[fd.Start:fd.End] != fd.Value {
				t.Fatalf("bad finding %+v in %q", fd, s)
			}
		}
		r := pii.Redact(s)
		if fs := pii.Scan(r); len(fs) != 0 {
			t.Fatalf("Redact(%q) = %q still has %+v", s, r, fs)
		}
		if r2 := pii.Redact(r); r2 != r {
			t.Fatalf("Redact is not idempotent: %q → %q", r, r2)
		}
		if utf8.ValidString(s) && !utf8.ValidString(r) {
			t.Fatalf("Redact(%q) broke UTF-8: %q", s, r)
		}
	})
}

// FuzzMaskers checks that no masker returns its whole input when the input is long enough to
// carry something worth hiding, and that masks are never re-detected as personal data.
func FuzzMaskers(f *testing.F) {
	for _, s := range []string{mobile, "+8613800138000", idCard, bankCard, "张三丰", "alice@example.com", "广东省深圳市南山区"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []pii.Kind{pii.KindPhone, pii.KindIDCard, pii.KindBankCard, pii.KindName, pii.KindEmail, pii.KindAddress, pii.KindSecret} {
			m := pii.Mask(k, s)
			if !strings.Contains(s, "*") && strings.TrimSpace(s) != "" && utf8.RuneCountInString(strings.TrimSpace(s)) >= 2 && m == strings.TrimSpace(s) {
				t.Fatalf("Mask(%s, %q) returned the value unchanged", k, s)
			}
			if k != pii.KindName && k != pii.KindAddress && k != pii.KindEmail && pii.Contains(m) {
				t.Fatalf("Mask(%s, %q) = %q is still detected", k, s, m)
			}
		}
	})
}

func TestScanIgnoresIdentifiers(t *testing.T) {
	for _, s := range []string{
		"conversation 0a1b2ca1-4144-9903-54ca-1f2e3d4c5b6a closed",
		"conversation 12345678-1391-3800-1380-123456789012 closed",
		"waybill JDVA17131486232",
		"id abc13800138000",
		"id 13800138000abc",
	} {
		if f := pii.Scan(s); len(f) != 0 {
			t.Errorf("Scan(%q) = %+v, want nothing: digits inside an identifier", s, f)
		}
	}
	for _, s := range []string{"call 13800138000 now", "手机13800138000", "tel:+86 138 0013 8000"} {
		if !pii.Contains(s) {
			t.Errorf("Contains(%q) = false", s)
		}
	}
}
