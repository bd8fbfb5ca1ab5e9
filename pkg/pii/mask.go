package pii

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind names a kind of personal data, for field rules and scanner findings.
type Kind string

// The kinds the maskers and the scanner know.
const (
	KindPhone    Kind = "phone"
	KindIDCard   Kind = "id_card"
	KindBankCard Kind = "bank_card"
	KindName     Kind = "name"
	KindEmail    Kind = "email"
	KindAddress  Kind = "address"
	// KindSecret is a credential (password, token, signature): never shown, not even in part.
	KindSecret Kind = "secret"
)

// Redacted replaces secrets and values too short to mask meaningfully.
const Redacted = "[REDACTED]"

// Mask masks v as kind. An unknown kind is treated as a secret.
func Mask(kind Kind, v string) string {
	switch kind {
	case KindPhone:
		return MaskPhone(v)
	case KindIDCard:
		return MaskIDCard(v)
	case KindBankCard:
		return MaskBankCard(v)
	case KindName:
		return MaskName(v)
	case KindEmail:
		return MaskEmail(v)
	case KindAddress:
		return MaskAddress(v)
	}
	if v == "" {
		return ""
	}
	return Redacted
}

// digitsOf returns the ASCII digits of s and whether s had anything else than digits and the
// usual number punctuation (space, -, ., (, ), leading +).
func digitsOf(s string) (digits string, plus, other bool) {
	var b strings.Builder
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "+") {
		plus = true
		s = s[1:]
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			other = true
		}
	}
	return b.String(), plus, other
}

// MaskPhone masks a phone number: a national number of 11+ digits keeps its first 3 and last 4
// digits (138****8000); an E.164 number keeps "+", two digits of the country code and the last 4
// (+86******8000); a shorter number keeps its last 4. The stars are a fixed run, so the mask does
// not tell the number's length. Anything that is not a phone number is masked entirely.
func MaskPhone(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	d, plus, other := digitsOf(v)
	switch {
	case other || len(d) < 7:
		return "****"
	case plus:
		return "+" + d[:2] + "******" + d[len(d)-4:]
	case len(d) >= 11:
		return d[:3] + "****" + d[len(d)-4:]
	default:
		return "****" + d[len(d)-4:]
	}
}

// MaskIDCard masks a resident identity card number, keeping the first 3 and last 4 characters
// and the length (110***********002X). A value shorter than 8 characters is masked entirely.
func MaskIDCard(v string) string {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(v))
	if s == "" {
		return ""
	}
	n := utf8.RuneCountInString(s)
	if n < 8 {
		return strings.Repeat("*", max(n, 4))
	}
	r := []rune(s)
	return string(r[:3]) + strings.Repeat("*", n-7) + string(r[n-4:])
}

// MaskBankCard masks a card or account number, keeping only the last 4 digits and the length.
func MaskBankCard(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	d, _, other := digitsOf(v)
	if other || len(d) < 8 {
		return "****"
	}
	return strings.Repeat("*", len(d)-4) + d[len(d)-4:]
}

// MaskName keeps the first character of a name and stars the rest (张** , A**** *****); spaces
// are kept. A one-character name becomes "*".
func MaskName(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	var b strings.Builder
	first := true
	for _, r := range v {
		switch {
		case first:
			first = false
			if utf8.RuneCountInString(v) == 1 {
				b.WriteByte('*')
			} else {
				b.WriteRune(r)
			}
		case unicode.IsSpace(r):
			b.WriteRune(r)
		default:
			b.WriteByte('*')
		}
	}
	return b.String()
}

// MaskEmail keeps the first character of the local part and the domain: a***@example.com.
func MaskEmail(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 {
		return "****"
	}
	r, _ := utf8.DecodeRuneInString(v)
	return string(r) + "***@" + v[at+1:]
}

// MaskAddress keeps the first 6 characters of an address (typically province and city,
// 广东省深圳市) and replaces the rest by "****".
func MaskAddress(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	r := []rune(v)
	if len(r) <= 6 {
		return "****"
	}
	return string(r[:6]) + "****"
}
