package identity

import (
	"errors"
	"strings"
	"testing"
)

type phoneCase struct {
	name   string
	raw    string
	region string // "" = default (CN)
	want   string // E.164; empty when an error is expected
	errHas string // substring of the expected error's reason
}

// phoneCases is shared with the idempotency test and seeds FuzzNormalizePhone.
var phoneCases = []phoneCase{
	// Chinese mobiles in every common form.
	{name: "cn mobile bare", raw: "13800138000", want: "+8613800138000"},
	{name: "cn mobile spaces 3-4-4", raw: "138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile dashes", raw: "138-0013-8000", want: "+8613800138000"},
	{name: "cn mobile dots", raw: "138.0013.8000", want: "+8613800138000"},
	{name: "cn mobile plus spaced", raw: "+86 138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile e164", raw: "+8613800138000", want: "+8613800138000"},
	{name: "cn mobile 0086", raw: "008613800138000", want: "+8613800138000"},
	{name: "cn mobile 0086 spaced", raw: "0086 138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile 86 prefix spaced", raw: "86 13800138000", want: "+8613800138000"},
	{name: "cn mobile 86 prefix joined", raw: "8613800138000", want: "+8613800138000"},
	{name: "cn mobile parenthesized plus", raw: "(+86)138-0013-8000", want: "+8613800138000"},
	{name: "cn mobile parenthesized 86", raw: "(86) 138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile plus86 dash", raw: "+86-138-0013-8000", want: "+8613800138000"},
	{name: "cn mobile full-width digits", raw: "１３８００１３８０００", want: "+8613800138000"},
	{name: "cn mobile full-width plus", raw: "＋８６ １３８ ００１３ ８０００", want: "+8613800138000"},
	{name: "cn mobile full-width parens and dash", raw: "（＋８６）１３８－００１３－８０００", want: "+8613800138000"},
	{name: "cn mobile ideographic space", raw: "138\u30000013\u30008000", want: "+8613800138000"},
	{name: "cn mobile en dash", raw: "138–0013–8000", want: "+8613800138000"},
	{name: "cn mobile surrounding space", raw: "  \t13800138000\n", want: "+8613800138000"},
	{name: "cn mobile trunk (0) after +86", raw: "+86 (0)138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile stray 0 after +86", raw: "+86 0138 0013 8000", want: "+8613800138000"},
	{name: "cn mobile old long-distance 0", raw: "013800138000", want: "+8613800138000"},
	{name: "cn mobile 19x", raw: "19912345678", want: "+8619912345678"},
	{name: "cn mobile 16x", raw: "16612345678", want: "+8616612345678"},
	{name: "cn mobile in US region with +86", raw: "+86 138 0013 8000", region: "US", want: "+8613800138000"},
	{name: "cn mobile region lower-case", raw: "13800138000", region: "cn", want: "+8613800138000"},

	// Chinese landlines.
	{name: "cn landline beijing", raw: "010-12345678", want: "+861012345678"},
	{name: "cn landline beijing parens", raw: "(010) 1234 5678", want: "+861012345678"},
	{name: "cn landline beijing +86", raw: "+86 10 1234 5678", want: "+861012345678"},
	{name: "cn landline beijing +86 (0)", raw: "+86 (0)10 1234 5678", want: "+861012345678"},
	{name: "cn landline beijing 0086 (0)", raw: "0086 (0)10 1234 5678", want: "+861012345678"},
	{name: "cn landline beijing +86 stray 0", raw: "+86 010 1234 5678", want: "+861012345678"},
	{name: "cn landline shanghai", raw: "021-6123-4567", want: "+862161234567"},
	{name: "cn landline shenzhen", raw: "0755-1234-5678", want: "+8675512345678"},
	{name: "cn landline shenzhen joined", raw: "075512345678", want: "+8675512345678"},
	{name: "cn landline 7-digit subscriber", raw: "0851-5123456", want: "+868515123456"},
	{name: "cn landline full-width", raw: "０２０－８７６５４３２１", want: "+862087654321"},

	// Other supported regions.
	{name: "us bare", raw: "(415) 555-2671", region: "US", want: "+14155552671"},
	{name: "us trunk 1", raw: "1-415-555-2671", region: "US", want: "+14155552671"},
	{name: "us dots", raw: "415.555.2671", region: "us", want: "+14155552671"},
	{name: "us +1", raw: "+1 (415) 555-2671", want: "+14155552671"},
	{name: "us 011 international", raw: "011 86 138 0013 8000", region: "US", want: "+8613800138000"},
	{name: "hk bare", raw: "5123 4567", region: "HK", want: "+85251234567"},
	{name: "hk +852", raw: "+852 2123 4567", want: "+85221234567"},
	{name: "tw mobile bare", raw: "912 345 678", region: "TW", want: "+886912345678"},
	{name: "tw mobile trunk", raw: "0912-345-678", region: "TW", want: "+886912345678"},
	{name: "tw landline taipei", raw: "(02) 2345-6789", region: "TW", want: "+886223456789"},
	{name: "tw landline taichung", raw: "04-2345-6789", region: "TW", want: "+886423456789"},
	{name: "tw landline taichung 7 digits", raw: "04-2345678", region: "TW", errHas: "numbering plan"},
	{name: "tw +886", raw: "+886 912 345 678", want: "+886912345678"},
	{name: "sg mobile", raw: "9123 4567", region: "SG", want: "+6591234567"},
	{name: "sg fixed", raw: "6123-4567", region: "SG", want: "+6561234567"},
	{name: "gb mobile", raw: "07400 123456", region: "GB", want: "+447400123456"},
	{name: "gb drama range (Ofcom reserves it for fiction)", raw: "07700 900123", region: "GB", errHas: "numbering plan"},
	{name: "gb london", raw: "020 7946 0958", region: "gb", want: "+442079460958"},
	{name: "gb +44 (0)", raw: "+44 (0)20 7946 0958", want: "+442079460958"},
	{name: "gb 0044", raw: "0044 20 7946 0958", want: "+442079460958"},
	{name: "unsupported region with country code", raw: "+49 30 1234567", region: "DE", want: "+49301234567"},
	{name: "explicit cc other country", raw: "+33 1 23 45 67 89", want: "+33123456789"},
	{name: "explicit cc, no such range", raw: "+49 1234 5678 90123", errHas: "numbering plan"},
	{name: "explicit cc 8 digits", raw: "+290 22158", want: "+29022158"},

	// Rejected.
	{name: "empty", raw: "", errHas: "empty"},
	{name: "blank", raw: "   ", errHas: "empty"},
	{name: "no digits", raw: "+ - ()", errHas: "no digits"},
	{name: "letters", raw: "138OO138OOO", errHas: "letters"},
	{name: "tel uri", raw: "tel:+8613800138000", errHas: "letters"},
	{name: "vanity letters", raw: "1-800-FLOWERS", region: "US", errHas: "letters"},
	{name: "ext word", raw: "010-12345678 ext 123", errHas: "extensions"},
	{name: "ext x", raw: "+1 415 555 2671 x12", errHas: "extensions"},
	{name: "ext full-width x", raw: "13800138000ｘ12", errHas: "extensions"},
	{name: "ext 转", raw: "010-12345678转8001", errHas: "extensions"},
	{name: "ext 分机", raw: "010-12345678分机8001", errHas: "extensions"},
	{name: "ext hash", raw: "010-12345678#8001", errHas: "extensions"},
	{name: "ext comma pause", raw: "01012345678,8001", errHas: "extensions"},
	{name: "symbol", raw: "138*0013*8000", errHas: "unexpected character"},
	{name: "slash", raw: "010/12345678", errHas: "unexpected character"},
	{name: "two plus", raw: "++8613800138000", errHas: "more than one"},
	{name: "plus in middle", raw: "86+13800138000", errHas: "before the digits"},
	{name: "nested parens", raw: "((86))13800138000", errHas: "nested"},
	{name: "unclosed paren", raw: "(010 12345678", errHas: "unbalanced"},
	{name: "stray close paren", raw: "010) 12345678", errHas: "unbalanced"},
	{name: "too many digits", raw: "123456789012345678901", errHas: "more than 20 digits"},
	{name: "too many characters", raw: strings.Repeat("1 ", 40), errHas: "longer than"},
	{name: "invalid utf-8", raw: "138\xff00138000", errHas: "UTF-8"},
	{name: "cn mobile 10 digits", raw: "1380013800", errHas: "numbering plan"},
	{name: "cn mobile 12 digits", raw: "138001380001", errHas: "numbering plan"},
	{name: "cn mobile +86 12 digits", raw: "+86138001380001", errHas: "numbering plan"},
	{name: "cn mobile bad prefix 12", raw: "12800138000", errHas: "numbering plan"},
	{name: "cn mobile bad prefix 11", raw: "11800138000", errHas: "numbering plan"},
	{name: "cn beijing without trunk", raw: "1012345678", want: "+861012345678"}, // libphonenumber reads it so
	{name: "cn local number without area code", raw: "8765 4321", errHas: "numbering plan"},
	{name: "cn 86 prefix on landline", raw: "8675512345678", want: "+8675512345678"}, // libphonenumber reads it so
	{name: "cn landline short", raw: "010-1234567", errHas: "numbering plan"},
	{name: "cn landline subscriber starts 0", raw: "010-02345678", want: "+861002345678"}, // libphonenumber reads it so
	{name: "cn landline 3-digit area too long", raw: "0755-123456789", errHas: "numbering plan"},
	{name: "cn +86 double zero", raw: "+86 00 10 1234 5678", want: "+861012345678"}, // libphonenumber reads it so
	{name: "cn +86 only", raw: "+86", errHas: "too short"},
	{name: "cn lone trunk", raw: "0", errHas: "too short"},
	{name: "country code 0", raw: "+0 123 456 789", errHas: "cannot start with 0"},
	{name: "000 prefix", raw: "000123456789", errHas: "cannot start with 0"},
	{name: "00 alone", raw: "00", errHas: "no digits after"},
	{name: "e164 too short", raw: "+4912345", errHas: "numbering plan"},
	{name: "e164 too long", raw: "+4912345678901234", errHas: "numbering plan"},
	{name: "+1 bad area code", raw: "+1 115 555 2671", errHas: "numbering plan"},
	{name: "+1 too short", raw: "+1 415 555 267", errHas: "too short for"},
	{name: "us area code 0", raw: "015 555 2671", region: "US", errHas: "numbering plan"},
	{name: "us exchange 1", raw: "415 155 2671", region: "US", errHas: "numbering plan"},
	{name: "us 9 digits", raw: "415 555 267", region: "US", errHas: "too short for"},
	{name: "hk 7 digits", raw: "5123 456", region: "HK", errHas: "numbering plan"},
	{name: "hk starts 1", raw: "1234 5678", region: "HK", errHas: "numbering plan"},
	{name: "sg starts 5", raw: "5123 4567", region: "SG", errHas: "numbering plan"},
	{name: "sg 9 digits", raw: "9123 45678", region: "SG", errHas: "not a length"},
	{name: "tw landline without trunk", raw: "2345 6789", region: "TW", errHas: "numbering plan"},
	{name: "tw mobile 10 digits after trunk", raw: "0912 345 6789", region: "TW", errHas: "numbering plan"},
	{name: "gb without trunk", raw: "7700 900123", region: "GB", errHas: "numbering plan"},
	{name: "gb 9 national digits", raw: "07700 90012", region: "GB", errHas: "numbering plan"},
	{name: "gb national starts 4", raw: "04700 900123", region: "GB", errHas: "numbering plan"},
	{name: "national number in any region", raw: "030 1234567", region: "DE", want: "+49301234567"},
	{name: "unknown region", raw: "030 1234567", region: "XX", errHas: "region"},
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for _, tc := range phoneCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tc.raw, tc.region)
			if tc.errHas != "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("NormalizePhone(%q, %q) = %q, %v; want an error wrapping ErrInvalid", tc.raw, tc.region, got, err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not mention %q", err, tc.errHas)
				}
				if got != "" {
					t.Errorf("got %q alongside the error; want \"\"", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePhone(%q, %q): %v", tc.raw, tc.region, err)
			}
			if got != tc.want {
				t.Errorf("NormalizePhone(%q, %q) = %q; want %q", tc.raw, tc.region, got, tc.want)
			}
		})
	}
}

// Errors end up in logs: they must not repeat the number.
func TestNormalizePhoneErrorHidesValue(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"13800138001234", "+86 138 0013 8000 ext 9", "010-98765432转1", "98765432"} {
		_, err := NormalizePhone(raw, "CN")
		if err == nil {
			t.Fatalf("NormalizePhone(%q) succeeded; want an error", raw)
		}
		for _, part := range []string{"0013", "98765432", "38001380"} {
			if strings.Contains(raw, part) && strings.Contains(err.Error(), part) {
				t.Errorf("error %q repeats %q from the input", err, part)
			}
		}
	}
}
