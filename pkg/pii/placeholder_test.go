package pii_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	p := pii.NewPlaceholders()
	in := "我的手机 " + mobile + "，身份证 " + idCard + "，卡号 " + bankCard + "，邮箱 alice@example.com，再说一遍 " + mobile + " 或 13900139000"
	got := p.Replace(in)
	want := "我的手机 <PHONE_1>，身份证 <ID_CARD_1>，卡号 <BANK_CARD_1>，邮箱 <EMAIL_1>，再说一遍 <PHONE_1> 或 <PHONE_2>"
	if got != want {
		t.Fatalf("Replace:\n got %s\nwant %s", got, want)
	}
	if fs := pii.Scan(got); len(fs) != 0 {
		t.Fatalf("findings left: %+v", fs)
	}
	// Stable across calls of one mapping.
	if again := p.Replace("call " + mobile); again != "call <PHONE_1>" {
		t.Fatalf("second Replace: %s", again)
	}
	if r := p.Restore(got); r != in {
		t.Fatalf("Restore:\n got %s\nwant %s", r, in)
	}
	// A placeholder it did not issue stays.
	if r := p.Restore("<PHONE_1> <PHONE_9> <NAME_1>"); r != mobile+" <PHONE_9> <NAME_1>" {
		t.Fatalf("Restore of unknown placeholders: %s", r)
	}
	if is := p.Issued(); !slices.Equal(is, []string{"<PHONE_1>", "<ID_CARD_1>", "<BANK_CARD_1>", "<EMAIL_1>", "<PHONE_2>"}) {
		t.Fatalf("Issued: %v", is)
	}
	if r := pii.NewPlaceholders().Restore("<PHONE_1>"); r != "<PHONE_1>" {
		t.Fatalf("empty mapping restored %s", r)
	}
}

// FuzzPlaceholders: Replace leaves nothing Scan finds, keeps UTF-8 valid, and Restore undoes it
// for text without placeholder-shaped parts.
func FuzzPlaceholders(f *testing.F) {
	for _, s := range []string{
		"", "my phone is " + mobile, "tel:+86 138 0013 8000", idCard + " " + bankCard,
		"a.b@example.com.cn 13800138000@example.com", "卡号 6222 0212 3456 7890 128 到账",
		"<PHONE_1> " + mobile, "1" + mobile + "1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := pii.NewPlaceholders()
		out := p.Replace(s)
		if fs := pii.Scan(out); len(fs) != 0 {
			t.Fatalf("Replace(%q) = %q still has %+v", s, out, fs)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Replace(%q) = %q is not valid UTF-8", s, out)
		}
		if !strings.Contains(s, "<") {
			if back := p.Restore(out); back != s {
				t.Fatalf("Restore(Replace(%q)) = %q", s, back)
			}
		}
	})
}
