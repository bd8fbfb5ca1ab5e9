package identity

import (
	"strings"
	"unicode/utf8"
)

const (
	minMaskedDigits = 4  // a masked phone hides at least this many national digits
	minVendorShown  = 10 // vendor ids shorter than this (in runes) are fully starred
)

// Mask renders id for logs and display without revealing it:
//
//	phone  +8613800138000      → +86 138****8000 (country code, first 3 and last 4 national
//	                             digits; at least 4 digits hidden: +852 ****5678)
//	email  jane@example.com    → j***@example.com
//	other  oUpF8uMuAJO_M2pxb1Q → oUpF…1Q (first 4 and last 2 characters; shorter than 10: all stars)
//
// An Indexed ID masks to the mask it carries. Mask expects a normalized ID; a phone or email value that is not normalized is masked like a
// vendor id, so Mask never shows more than that. The empty value masks to "".
func Mask(id ID) string {
	if _, masked, ok := id.IsIndexed(); ok {
		return masked
	}
	switch id.Kind {
	case Phone:
		if m, ok := maskPhone(id.Value); ok {
			return m
		}
	case Email:
		if m, ok := maskEmail(id.Value); ok {
			return m
		}
	}
	return maskOpaque(id.Value)
}

// maskPhone masks an E.164 number; ok is false if v is not one.
func maskPhone(v string) (string, bool) {
	if len(v) < 1+minE164Digits || len(v) > 1+maxE164Digits || v[0] != '+' || v[1] == '0' {
		return "", false
	}
	for i := 1; i < len(v); i++ {
		if !between(v[i], '0', '9') {
			return "", false
		}
	}
	digits := v[1:]
	cc := digits[:countryCodeLen(digits)]
	nsn := digits[len(cc):]
	hidden := max(minMaskedDigits, len(nsn)-7)
	hidden = min(hidden, len(nsn))
	shown := len(nsn) - hidden
	tail := min(4, shown)
	head := shown - tail
	return "+" + cc + " " + nsn[:head] + strings.Repeat("*", hidden) + nsn[len(nsn)-tail:], true
}

// countryCodeLen returns the length of the ITU-T E.164 country code at the start of digits:
// 1 for zones 1 and 7, 2 for the two-digit codes, 3 otherwise.
func countryCodeLen(digits string) int {
	switch digits[0] {
	case '1', '7':
		return 1
	}
	switch digits[:2] {
	case "20", "27", "30", "31", "32", "33", "34", "36", "39",
		"40", "41", "43", "44", "45", "46", "47", "48", "49",
		"51", "52", "53", "54", "55", "56", "57", "58",
		"60", "61", "62", "63", "64", "65", "66",
		"81", "82", "84", "86",
		"90", "91", "92", "93", "94", "95", "98":
		return 2
	}
	return 3
}

// maskEmail keeps the first character of the local part and the domain; ok is false if v has no
// "@" with something on both sides.
func maskEmail(v string) (string, bool) {
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || !utf8.ValidString(v) {
		return "", false
	}
	local, domain := v[:at], v[at+1:]
	first := ""
	if utf8.RuneCountInString(local) > 1 {
		_, n := utf8.DecodeRuneInString(local)
		first = local[:n]
	}
	return first + "***@" + domain, true
}

// maskOpaque keeps the first 4 and last 2 runes of v, or stars it all if it is short.
func maskOpaque(v string) string {
	r := []rune(v)
	if len(r) < minVendorShown {
		return strings.Repeat("*", len(r))
	}
	return string(r[:4]) + "…" + string(r[len(r)-2:])
}
