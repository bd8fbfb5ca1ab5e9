package kb

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTerms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"chinese bigrams", "银行卡重复扣款", []string{"银行", "行卡", "卡重", "重复", "复扣", "扣款"}},
		{"runs split by punctuation", "退款，到账", []string{"退款", "到账"}},
		{"lone character", "卡", []string{"卡"}},
		{"stop bigrams left out", "您好请问", []string{"好请"}},
		{"english words", "My Refunds were charged TWICE!", []string{"refund", "were", "charged", "twice"}},
		{"mixed", "订单SF1234退款", []string{"订单", "sf1234", "退款"}},
		{"each once", "退款 退款 refund refunds", []string{"退款", "refund"}},
		{"one letter words dropped", "a b 我", []string{"我"}},
		{"class not plural", "business class", []string{"business", "class"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Terms(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("Terms(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzTerms: whatever a customer writes, the terms are non-empty, valid, unique, bounded, free of
// spaces and quotes (they are written into tsquery literals) and stable.
func FuzzTerms(f *testing.F) {
	for _, s := range []string{"我的银行卡被重复扣款了两次，卡号 6222 0212", "Where is my parcel SF1234567890123?", "会员积分怎么兑换",
		"'); DROP TABLE kb; --", "\xff\xfe", strings.Repeat("长", 5000), "ǅemo İstanbul ﬃ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms := Terms(s)
		if len(terms) > MaxTerms {
			t.Fatalf("%d terms", len(terms))
		}
		seen := map[string]bool{}
		for _, term := range terms {
			if term == "" || len(term) > MaxTermBytes || !utf8.ValidString(term) || seen[term] {
				t.Fatalf("bad term %q in %q", term, terms)
			}
			seen[term] = true
			for _, r := range term {
				if !unicode.IsLetter(r) && !unicode.IsDigit(r) || r == utf8.RuneError {
					t.Fatalf("term %q holds %q", term, r)
				}
			}
		}
		if again := Terms(s); !slices.Equal(again, terms) {
			t.Fatalf("not stable: %q then %q", terms, again)
		}
	})
}
