package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

const (
	maxPhoneRunes  = 64 // of raw input, decoration included
	maxPhoneDigits = 20 // before prefixes are removed: "00" + 15 + trunk zeros, with room to spare
	minE164Digits  = 8  // country code included: what Mask takes for an E.164 number
	maxE164Digits  = 15 // ITU-T E.164, country code included
)

// NormalizePhone returns raw as an E.164 number ("+8613800138000"). A number written without
// "+" or "00" is read in defaultRegion ("" means "CN"; any ISO 3166 region libphonenumber knows).
// The rules are in the package documentation. Errors wrap [ErrInvalid].
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
	case region == "CN" && len(digits) == 13 && strings.HasPrefix(digits, "861"):
		return international(digits) // the country code written without "+" before a mobile
	}
	if phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return "", phoneErr(fmt.Sprintf("region %s is unknown: write the number with +<country code> or 00<country code>", quoteShort(region)))
	}
	return parsePhone(digits, region)
}

// international reads d, the digits after "+" or the international prefix: country code and
// national number.
func international(d string) (string, error) {
	switch {
	case d == "":
		return "", phoneErr("no digits after the international prefix")
	case d[0] == '0':
		return "", phoneErr("country code cannot start with 0")
	case strings.HasPrefix(d, "860"):
		// A stray trunk 0 after +86 ("+86 010 …"): no Chinese national number starts with 0.
		d = "86" + d[3:]
	}
	return parsePhone("+"+d, "ZZ")
}

// parsePhone parses s in region with libphonenumber and returns it in E.164 if it is a valid
// number of its country's numbering plan.
func parsePhone(s, region string) (string, error) {
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		switch {
		case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
			return "", phoneErr("unknown country code")
		case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD), errors.Is(err, phonenumbers.ErrNotANumber):
			return "", phoneErr("too short")
		}
		return "", phoneErr(err.Error())
	}
	if phonenumbers.IsValidNumber(n) {
		e := phonenumbers.Format(n, phonenumbers.E164)
		if len(e)-1 > maxE164Digits {
			// libphonenumber's metadata allows a few national numbers (German) longer than
			// E.164's 15 digits, which no carrier routes internationally.
			return "", phoneErr(fmt.Sprintf("too long: E.164 numbers have at most %d digits", maxE164Digits))
		}
		return e, nil
	}
	cc := n.GetCountryCode()
	where := fmt.Sprintf("+%d (%s)", cc, phonenumbers.GetRegionCodeForCountryCode(int(cc)))
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "", phoneErr("unknown country code")
	case phonenumbers.TOO_SHORT:
		return "", phoneErr("too short for a " + where + " number")
	case phonenumbers.TOO_LONG:
		return "", phoneErr("too long for a " + where + " number")
	case phonenumbers.INVALID_LENGTH:
		return "", phoneErr("not a length " + where + " numbers have")
	}
	return "", phoneErr("not a number of the " + where + " numbering plan (no such area code or mobile range)")
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

func phoneErr(reason string) error { return invalid(Phone, reason) }

func between(c, lo, hi byte) bool { return c >= lo && c <= hi }
