package identity

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxPhoneRunes  = 64 // of raw input, decoration included
	maxPhoneDigits = 20 // before prefixes are removed: "00" + 15 + trunk zeros, with room to spare
	minE164Digits  = 8  // country code included
	maxE164Digits  = 15
)

// NormalizePhone returns raw as an E.164 number ("+8613800138000"). A number written without
// "+" or "00" is read in defaultRegion ("" means "CN"; supported: CN, US, HK, TW, SG, GB). The rules
// are in the package documentation. Errors wrap [ErrInvalid].
func NormalizePhone(raw, defaultRegion string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", phoneErr("not valid UTF-8")
	}
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return "", phoneErr("empty")
	case utf8.RuneCountInString(s) > maxPhoneRunes:
		return "", phoneErr(fmt.Sprintf("longer than %d characters", maxPhoneRunes))
	}
	s = foldWidth(s)
	if hasExtension(s) {
		return "", phoneErr(`extensions ("ext", "x", "转", "分机", "#", ",", ";") are not supported: give the number without it`)
	}
	digits, plus, err := scanPhone(s)
	if err != nil {
		return "", err
	}
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if region == "" {
		region = DefaultRegion
	}
	switch {
	case plus:
		return international(digits)
	case strings.HasPrefix(digits, "00"):
		return international(digits[2:])
	case region == "US" && strings.HasPrefix(digits, "011"):
		return international(digits[3:])
	}
	return national(digits, region)
}

// foldWidth maps full-width ASCII variants (U+FF01–U+FF5E: digits, ＋, （）, －, ＃, letters) to
// ASCII and the ideographic space to a space.
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '\uFF01' && r <= '\uFF5E':
			return r - 0xFEE0
		case r == '\u3000':
			return ' '
		}
		return r
	}, s)
}

// hasExtension reports whether s (already width-folded) carries an extension marker.
func hasExtension(s string) bool {
	l := strings.ToLower(s)
	for _, m := range []string{"x", "转", "轉", "分机", "分機", "#", ",", ";"} { // "x" covers "ext"
		if strings.Contains(l, m) {
			return true
		}
	}
	return false
}

// isPhoneSeparator reports whether r is decoration that carries no digit: space, dash or dot.
func isPhoneSeparator(r rune) bool {
	switch r {
	case '-', '.', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		return true
	}
	return unicode.IsSpace(r)
}

// scanPhone strips the decoration from s and returns its digits and whether it had a leading "+".
// A "(0)" group after the country code of an international number is dropped.
func scanPhone(s string) (digits string, plus bool, err error) {
	var (
		b       = make([]byte, 0, maxPhoneDigits)
		group   []byte // digits inside the open parenthesis
		inParen bool
		dropped bool // a "(0)" trunk group was dropped already
	)
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if len(b)+len(group) >= maxPhoneDigits {
				return "", false, phoneErr(fmt.Sprintf("more than %d digits", maxPhoneDigits))
			}
			if inParen {
				group = append(group, byte(r))
			} else {
				b = append(b, byte(r))
			}
		case r == '+':
			if plus {
				return "", false, phoneErr(`more than one "+"`)
			}
			if len(b) > 0 || len(group) > 0 {
				return "", false, phoneErr(`"+" must come before the digits`)
			}
			plus = true
		case r == '(':
			if inParen {
				return "", false, phoneErr("nested parentheses")
			}
			inParen = true
		case r == ')':
			if !inParen {
				return "", false, phoneErr("unbalanced parentheses")
			}
			inParen = false
			afterCountryCode := (plus && len(b) > 0) || (len(b) > 2 && b[0] == '0' && b[1] == '0')
			if string(group) == "0" && afterCountryCode && !dropped {
				dropped = true
			} else {
				b = append(b, group...)
			}
			group = group[:0]
		case isPhoneSeparator(r):
		case unicode.IsLetter(r):
			return "", false, phoneErr("contains letters")
		default:
			return "", false, phoneErr(fmt.Sprintf("unexpected character %U", r))
		}
	}
	if inParen {
		return "", false, phoneErr("unbalanced parentheses")
	}
	if len(b) == 0 {
		return "", false, phoneErr("no digits")
	}
	return string(b), plus, nil
}

// international checks d, the digits after "+" or the international prefix: country code and
// national number.
func international(d string) (string, error) {
	switch {
	case d == "":
		return "", phoneErr("no digits after the international prefix")
	case d[0] == '0':
		return "", phoneErr("country code cannot start with 0")
	}
	switch {
	case strings.HasPrefix(d, "86"):
		nsn, err := cnNational(strings.TrimPrefix(d[2:], "0"))
		if err != nil {
			return "", err
		}
		d = "86" + nsn
	case d[0] == '1':
		if err := nanp(d[1:]); err != nil {
			return "", err
		}
	}
	switch {
	case len(d) < minE164Digits:
		return "", phoneErr(fmt.Sprintf("too short: E.164 numbers have at least %d digits", minE164Digits))
	case len(d) > maxE164Digits:
		return "", phoneErr(fmt.Sprintf("too long: E.164 numbers have at most %d digits", maxE164Digits))
	}
	return "+" + d, nil
}

// national reads d, a number without country code, in region.
func national(d, region string) (string, error) {
	switch region {
	case "CN":
		return cnBare(d)
	case "US":
		if len(d) == 11 && d[0] == '1' { // trunk prefix 1
			d = d[1:]
		}
		if err := nanp(d); err != nil {
			return "", err
		}
		return "+1" + d, nil
	case "HK":
		if len(d) != 8 || !between(d[0], '2', '9') {
			return "", phoneErr("Hong Kong numbers have 8 digits starting 2–9")
		}
		return "+852" + d, nil
	case "SG":
		if len(d) != 8 || !strings.ContainsRune("3689", rune(d[0])) {
			return "", phoneErr("Singapore numbers have 8 digits starting 3, 6, 8 or 9")
		}
		return "+65" + d, nil
	case "TW":
		return twBare(d)
	case "GB":
		if d[0] != '0' {
			return "", phoneErr("UK national numbers start with the trunk 0")
		}
		nsn := d[1:]
		if len(nsn) != 10 || !strings.ContainsRune("1235789", rune(nsn[0])) {
			return "", phoneErr("UK national numbers are 0 and 10 digits starting 1, 2, 3, 5, 7, 8 or 9")
		}
		return "+44" + nsn, nil
	}
	return "", phoneErr(fmt.Sprintf("region %s is not supported without an explicit country code: write the number with +<country code> or 00<country code>", quoteShort(region)))
}

// cnBare reads a Chinese number written without country code.
func cnBare(d string) (string, error) {
	var nsn string
	switch {
	case d[0] == '0': // trunk 0 + area code + subscriber (or, tolerated, + mobile)
		nsn = d[1:]
	case len(d) == 13 && strings.HasPrefix(d, "861"): // country code without "+"
		nsn = d[2:]
	case d[0] == '1':
		if len(d) == 10 && d[1] == '0' {
			return "", phoneErr("Chinese landline numbers need the trunk 0 before the area code (010-…)")
		}
		nsn = d
	default:
		return "", phoneErr("not a Chinese mobile number (11 digits starting 13–19) and no area code with its trunk 0 (010-…, 0755-…)")
	}
	nsn, err := cnNational(nsn)
	if err != nil {
		return "", err
	}
	return "+86" + nsn, nil
}

// cnNational checks a Chinese national significant number (no trunk 0): a mobile, 1[3-9] and 9
// more digits, or a landline, area code (10, 2x, 3xx–9xx) and subscriber number (8 digits after a
// two-digit area code, 7 or 8 after a three-digit one, not starting 0).
func cnNational(nsn string) (string, error) {
	if len(nsn) < 4 {
		return "", phoneErr("too short for a Chinese number")
	}
	switch c0, c1 := nsn[0], nsn[1]; {
	case c0 == '1' && between(c1, '3', '9'):
		if len(nsn) != 11 {
			return "", phoneErr(fmt.Sprintf("Chinese mobile numbers have 11 digits, not %d", len(nsn)))
		}
		return nsn, nil
	case c0 == '1' && c1 == '0', c0 == '2':
		if len(nsn) != 10 || nsn[2] == '0' {
			return "", phoneErr("Chinese landlines with a two-digit area code (10, 2x) have an 8-digit number not starting 0")
		}
		return nsn, nil
	case c0 == '1':
		return "", phoneErr("not a Chinese mobile number: mobiles start 13–19")
	case c0 == '0':
		return "", phoneErr("unexpected 0 after the trunk prefix or country code")
	default:
		if (len(nsn) != 10 && len(nsn) != 11) || nsn[3] == '0' {
			return "", phoneErr("Chinese landlines with a three-digit area code have a 7- or 8-digit number not starting 0")
		}
		return nsn, nil
	}
}

// nanp checks a North American national number: NXX NXX XXXX, N = 2–9.
func nanp(nsn string) error {
	if len(nsn) != 10 || !between(nsn[0], '2', '9') || !between(nsn[3], '2', '9') {
		return phoneErr("North American numbers have 10 digits, area code and exchange starting 2–9")
	}
	return nil
}

// twBare reads a Taiwanese number written without country code.
func twBare(d string) (string, error) {
	if d[0] != '0' {
		if len(d) == 9 && d[0] == '9' {
			return "+886" + d, nil
		}
		return "", phoneErr("Taiwanese numbers are mobiles (9 digits starting 9) or landlines with the trunk 0 and area code")
	}
	nsn := d[1:]
	switch {
	case len(nsn) == 9 && nsn[0] == '9':
	case (len(nsn) == 8 || len(nsn) == 9) && between(nsn[0], '2', '8'):
	default:
		return "", phoneErr("Taiwanese numbers after the trunk 0 are mobiles (9 digits starting 9) or landlines (8–9 digits starting 2–8)")
	}
	return "+886" + nsn, nil
}

func between(c, lo, hi byte) bool { return c >= lo && c <= hi }

func phoneErr(reason string) error { return invalid(Phone, reason) }
