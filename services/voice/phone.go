package voice

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// identity is a customer identity of the session store (kind, value).
type identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// partyIdentity turns a SIP URI's user part into a phone identity in E.164 when it is a
// telephone number, and keeps the URI (kind sip_uri) when it is not (an extension, a name).
func partyIdentity(u sip.Uri, cc string) identity {
	if e164, ok := normalisePhone(u.User, cc); ok {
		return identity{Kind: "phone", Value: e164}
	}
	s := "sip:" + u.User
	if u.User != "" {
		s += "@"
	}
	s += u.Host
	if len(s) > 256 {
		s = s[:256]
	}
	return identity{Kind: "sip_uri", Value: s}
}

// normalisePhone returns n in E.164 (+ and 8 to 15 digits): "+8613800138000" as it is,
// "008613800138000" and "8613800138000" with their country code, "013800138000" or
// "02112345678" (national, trunk prefix 0) and, for cc 86, "13800138000" (a mobile) and
// "4008001234" (a service number) with cc.
// Visual separators (space, -, ., parentheses) are dropped. Anything else is not a phone.
func normalisePhone(n, cc string) (string, bool) {
	n = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()", r) {
			return -1
		}
		return r
	}, n)
	plus := strings.HasPrefix(n, "+")
	d := strings.TrimPrefix(n, "+")
	if d == "" || strings.Trim(d, "0123456789") != "" {
		return "", false
	}
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "0"):
		d = cc + d[1:]
	case cc == "86" && len(d) == 11 && d[0] == '1':
		d = cc + d // a mobile
	case cc == "86" && len(d) == 10 && (strings.HasPrefix(d, "400") || strings.HasPrefix(d, "800")):
		d = cc + d // a national service number
	case strings.HasPrefix(d, cc) && len(d) > 10:
	default:
		return "", false
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return "+" + d, true
}
