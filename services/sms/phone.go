package sms

import (
	"errors"
	"fmt"
	"strings"
)

// errPhone is wrapped by normalizePhone. Messages never contain the number (it is personal data).
var errPhone = errors.New("invalid phone number")

// regionCodes are the default regions SMS_DEFAULT_REGION accepts and their country codes.
var regionCodes = map[string]string{"CN": "86", "HK": "852", "MO": "853", "TW": "886", "SG": "65", "US": "1", "GB": "44"}

// normalizePhone returns raw in E.164 (+8613800138000). Spaces (also the ideographic one),
// dashes, dots and parentheses are dropped. A leading + or 00 introduces the country code;
// otherwise the number is national in region: for CN an 11-digit mobile 1[3-9]xxxxxxxxx, also
// written with a trunk 0 or with the 86 country code and no +; elsewhere one trunk 0 is dropped
// before the country code is added. The result has 8-15 digits; +86 numbers must be mobiles,
// since only mobiles send and receive SMS.
func normalizePhone(raw, region string) (string, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\u3000', '\t', '-', '.', '(', ')':
			return -1
		}
		return r
	}, raw)
	var d string
	switch {
	case strings.HasPrefix(s, "+"):
		d = s[1:]
	case strings.HasPrefix(s, "00"):
		d = s[2:]
	case region == "CN":
		switch {
		case cnMobile(s):
			d = "86" + s
		case len(s) == 12 && s[0] == '0' && cnMobile(s[1:]):
			d = "86" + s[1:]
		case len(s) == 13 && strings.HasPrefix(s, "86") && cnMobile(s[2:]):
			d = s
		default:
			return "", fmt.Errorf("%w: not a mainland mobile number (11 digits 1[3-9]…) and no country code", errPhone)
		}
	default:
		cc, ok := regionCodes[region]
		if !ok {
			return "", fmt.Errorf("%w: unsupported default region", errPhone)
		}
		d = cc + strings.TrimPrefix(s, "0")
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' || !allDigits(d) {
		return "", fmt.Errorf("%w: an E.164 number has 8-15 digits after the country code's +", errPhone)
	}
	if rest, ok := strings.CutPrefix(d, "86"); ok && !cnMobile(rest) {
		return "", fmt.Errorf("%w: +86 numbers must be mobile numbers 1[3-9]xxxxxxxxx", errPhone)
	}
	return "+" + d, nil
}

func cnMobile(s string) bool { return len(s) == 11 && s[0] == '1' && s[1] >= '3' && allDigits(s) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// aliyunNumber writes an E.164 number the way Aliyun's PhoneNumbers documents it: a mainland
// mobile as its 11 digits, any other number as country code + number without "+".
func aliyunNumber(e164 string) string {
	if rest, ok := strings.CutPrefix(e164, "+86"); ok {
		return rest
	}
	return strings.TrimPrefix(e164, "+")
}

// fromAliyun reads a phone_number of an Aliyun push (a mainland number's 11 digits, or country
// code + number) as E.164.
func fromAliyun(n string) (string, error) {
	if e, err := normalizePhone(n, "CN"); err == nil {
		return e, nil
	}
	if strings.HasPrefix(n, "+") || strings.HasPrefix(n, "00") {
		return normalizePhone(n, "CN")
	}
	return normalizePhone("+"+n, "CN")
}
