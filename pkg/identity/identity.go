package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The identity kinds of DESIGN.md §4. Other vendor kinds are allowed if [ValidKind] accepts them.
const (
	Phone               = "phone"                 // E.164, see NormalizePhone
	Email               = "email"                 // lower-cased address, see NormalizeEmail
	WechatOpenID        = "wechat_openid"         // per official account / mini program
	WechatUnionID       = "wechat_unionid"        // per WeChat open platform account
	WecomExternalUserID = "wecom_external_userid" // WeCom external contact
	DouyinOpenID        = "douyin_openid"
	KuaishouOpenID      = "kuaishou_openid"
	WeiboUID            = "weibo_uid"
	WebVisitor          = "web_visitor" // web chat widget visitor id
	CRMID               = "crm_id"
	MemberID            = "member_id" // loyalty / membership number
)

// DefaultRegion is the region a [Normalizer] with an empty DefaultRegion reads national phone
// numbers in.
const DefaultRegion = "CN"

// Limits on values.
const (
	MaxKindLen     = 40  // bytes, see ValidKind
	MaxVendorIDLen = 256 // bytes, after trimming
	MaxEmailLen    = 254 // bytes, after trimming
)

// ErrInvalid is wrapped by every error of this package: the kind or value is not a valid identity.
// Match it with errors.Is; the message says why, without repeating the value.
var ErrInvalid = errors.New("invalid identity")

// ID is a normalized identity: Kind is a valid kind and Value is normalized for that kind. Build
// IDs with [Normalizer.Normalize]; the zero ID is not a valid identity.
type ID struct {
	Kind  string
	Value string
}

// String returns "kind:value". It shows the value in clear: use [Mask] for logs and screens.
func (id ID) String() string { return id.Kind + ":" + id.Value }

// Normalizer normalizes identities. The zero value is ready to use and reads national phone
// numbers as Chinese.
type Normalizer struct {
	// DefaultRegion is the ISO 3166-1 alpha-2 region national phone numbers (those without "+" or
	// "00") are read in; default "CN". Case-insensitive. See NormalizePhone for the supported
	// regions; numbers with a country code are accepted whatever the region.
	DefaultRegion string
}

// Normalize validates kind and normalizes value for it: phones with [NormalizePhone] in
// n.DefaultRegion, emails with [NormalizeEmail], every other kind as an opaque vendor id (see the
// package documentation). Errors wrap [ErrInvalid].
//
// Normalize is idempotent: Normalize(kind, id.Value) returns id for any id it returned.
func (n Normalizer) Normalize(kind, value string) (ID, error) {
	if !ValidKind(kind) {
		return ID{}, fmt.Errorf("%w: kind %s must match ^[a-z][a-z0-9_]{0,39}$", ErrInvalid, quoteShort(kind))
	}
	var (
		v   string
		err error
	)
	switch kind {
	case Phone:
		v, err = NormalizePhone(value, n.DefaultRegion)
	case Email:
		v, err = NormalizeEmail(value)
	default:
		v, err = normalizeVendorID(kind, value)
	}
	if err != nil {
		return ID{}, err
	}
	return ID{Kind: kind, Value: v}, nil
}

// ValidKind reports whether kind is a well-formed identity kind: ^[a-z][a-z0-9_]{0,39}$. All the
// kind constants are valid; other vendor kinds are allowed.
func ValidKind(kind string) bool {
	if kind == "" || len(kind) > MaxKindLen || kind[0] < 'a' || kind[0] > 'z' {
		return false
	}
	for i := 1; i < len(kind); i++ {
		c := kind[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// KnownKind reports whether kind is one of the kind constants of this package.
func KnownKind(kind string) bool {
	switch kind {
	case Phone, Email, WechatOpenID, WechatUnionID, WecomExternalUserID, DouyinOpenID,
		KuaishouOpenID, WeiboUID, WebVisitor, CRMID, MemberID:
		return true
	}
	return false
}

// normalizeVendorID trims surrounding white space and checks an opaque vendor id; case is kept.
func normalizeVendorID(kind, raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", invalid(kind, "not valid UTF-8")
	}
	v := strings.TrimSpace(raw)
	switch {
	case v == "":
		return "", invalid(kind, "empty")
	case len(v) > MaxVendorIDLen:
		return "", invalid(kind, fmt.Sprintf("longer than %d bytes", MaxVendorIDLen))
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return "", invalid(kind, fmt.Sprintf("contains control or invisible format character %U", r))
		}
	}
	return v, nil
}

// invalid builds the package's error: "invalid identity: <kind>: <reason>".
func invalid(kind, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, kind, reason)
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const maxLen = 48
	if len(s) > maxLen {
		return fmt.Sprintf("%q…", s[:maxLen])
	}
	return fmt.Sprintf("%q", s)
}

// indexLen is the length of a blind index (pkg/pii BlindIndex: base64url of 16 bytes).
const indexLen = 22

// Indexed is the ID a sealed identity is stored and matched under where personal data is
// encrypted (the unifier's identities, messages and calls): the value is "~", the blind index of
// the normalised value (pkg/pii Keys.BlindIndex), a space and its mask (Mask of the normalised
// value), so that equal identities have equal IDs without the value in clear, and a view can
// still show the mask. The mask is part of the stored key: changing what Mask renders for a kind
// changes the keys of that kind, which needs a store migration (TestMaskIsFrozen).
func Indexed(kind, index, masked string) ID {
	return ID{Kind: kind, Value: "~" + index + " " + masked}
}

// IsIndexed reports whether id is an Indexed ID, and returns its blind index and mask.
func (id ID) IsIndexed() (index, masked string, ok bool) {
	v := id.Value
	if len(v) < indexLen+2 || v[0] != '~' || v[indexLen+1] != ' ' {
		return "", "", false
	}
	return v[1 : indexLen+1], v[indexLen+2:], true
}
