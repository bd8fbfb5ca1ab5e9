package salesforce

import (
	"strings"
)

// Salesforce keeps a phone field as the user typed it (in US locales it reformats 10-digit
// numbers as "(415) 555-1212"), so an exact-match query must list the formats a number is likely
// stored in. PhoneVariants returns them for an E.164 number; NormalizePhone maps any of them (and
// other common spellings) back to E.164.

// MaxPhoneVariants bounds the variants PhoneVariants returns.
const MaxPhoneVariants = 16

// PhoneVariants returns the spellings of the E.164 number e164 ("+8613800138000") that
// Salesforce users commonly store: E.164 itself, national forms with and without grouping, and
// international forms with spaces, dashes and parentheses. Chinese (+86) and NANP (+1) numbers get
// their national groupings; other numbers get the international forms only. It returns nil if
// e164 is not "+" followed by 8 to 15 digits. The first variant is always e164.
func PhoneVariants(e164 string) []string {
	if !validE164(e164) {
		return nil
	}
	digits := e164[1:]
	out := []string{e164}
	add := func(vs ...string) {
		for _, v := range vs {
			dup := false
			for _, o := range out {
				dup = dup || o == v
			}
			if !dup && len(out) < MaxPhoneVariants {
				out = append(out, v)
			}
		}
	}
	switch {
	case strings.HasPrefix(digits, "86") && len(digits) == 13 && digits[2] == '1':
		// Chinese mobile: 138 0013 8000.
		n := digits[2:]
		g := n[:3] + " " + n[3:7] + " " + n[7:]
		d := n[:3] + "-" + n[3:7] + "-" + n[7:]
		add(n, g, d, "+86 "+n, "+86 "+g, "+86-"+d, "(+86) "+g, "86"+n, "0086"+n, "0086 "+g)
	case strings.HasPrefix(digits, "86") && len(digits) >= 11 && len(digits) <= 13 && digits[2] != '0':
		// Chinese landline: national form with trunk 0 (area code length varies, so no grouping).
		n := digits[2:]
		add("0"+n, "+86 "+n, "(+86) "+n, "0086"+n)
	case strings.HasPrefix(digits, "1") && len(digits) == 11 && digits[1] >= '2':
		n := digits[1:]
		a, b, c := n[:3], n[3:6], n[6:]
		add("("+a+") "+b+"-"+c, a+"-"+b+"-"+c, n, a+"."+b+"."+c, a+" "+b+" "+c,
			"+1 "+a+" "+b+" "+c, "+1 ("+a+") "+b+"-"+c, "+1-"+a+"-"+b+"-"+c, "1-"+a+"-"+b+"-"+c, "1"+n)
	default:
		add("00" + digits)
	}
	return out
}

func validE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NormalizePhone returns raw in E.164, or false when raw does not read as a phone number.
// Separators (spaces, - . / parentheses) are dropped and an extension ("x12", "ext. 12", "转12")
// is cut off. Numbers with "+" or "00" carry their country code; national numbers are read in
// region "CN" (11-digit mobiles 1xxxxxxxxxx, landlines with trunk 0, and the same with a bare 86
// prefix) or "US" (10 digits, or 11 starting with 1). The result has 8 to 15 digits.
func NormalizePhone(raw, region string) (string, bool) {
	s := strings.TrimSpace(raw)
	for _, ext := range []string{"ext.", "ext", "x", "X", "#", "转", ",", ";"} {
		if i := strings.Index(s, ext); i > 0 {
			s = s[:i]
		}
	}
	plus := strings.HasPrefix(s, "+") || strings.HasPrefix(s, "(+") || strings.HasPrefix(s, "＋")
	var d strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			d.WriteRune(r)
		case r >= '０' && r <= '９':
			d.WriteRune('0' + (r - '０'))
		case r == ' ' || r == '-' || r == '.' || r == '/' || r == '(' || r == ')' || r == '+' || r == '＋' || r == '\u00a0':
		default:
			return "", false
		}
	}
	n := d.String()
	var e string
	switch {
	case plus:
		e = "+" + n
	case strings.HasPrefix(n, "00"):
		e = "+" + n[2:]
	case strings.EqualFold(region, "US"):
		switch {
		case len(n) == 10 && n[0] >= '2':
			e = "+1" + n
		case len(n) == 11 && n[0] == '1' && n[1] >= '2':
			e = "+" + n
		}
	default: // CN
		switch {
		case len(n) == 11 && n[0] == '1':
			e = "+86" + n
		case len(n) == 13 && strings.HasPrefix(n, "861"):
			e = "+" + n
		case len(n) >= 10 && len(n) <= 12 && n[0] == '0' && n[1] != '0':
			e = "+86" + n[1:]
		}
	}
	if !validE164(e) {
		return "", false
	}
	return e, true
}
