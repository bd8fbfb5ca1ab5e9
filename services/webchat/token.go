package webchat

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// Visitor ids and tokens. A visitor id is "v_" + 16 lower-case hex digits (64 random bits),
// issued by the connector on a visitor's first connection together with its token:
//
//	token = hex(HMAC-SHA256(WEBCHAT_SECRET, "omnibus-webchat-visitor\n" + visitor))
//
// The widget keeps both in localStorage and presents them on every connection; a visitor cannot
// claim another's id without the secret. The token does not expire: it is the visitor's key, as a
// session cookie would be, and rotating WEBCHAT_SECRET signs every visitor out (they get new ids).

// ErrToken is wrapped when a visitor id and token do not match or are malformed.
var ErrToken = errors.New("visitor token does not match")

// ErrIdentity is wrapped when a host-signed identity is invalid or expired.
var ErrIdentity = errors.New("host identity rejected")

const visitorTokenContext = "omnibus-webchat-visitor\n"

// NewVisitorID returns a fresh random visitor id.
func NewVisitorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "v_" + hex.EncodeToString(b[:])
}

// ValidVisitorID reports whether s has the form of a visitor id ("v_" + 16 lower-case hex
// digits). The form keeps ids safe as NATS subject tokens and KV keys.
func ValidVisitorID(s string) bool {
	if len(s) != 18 || s[0] != 'v' || s[1] != '_' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VisitorToken returns the token of visitor under secret.
func VisitorToken(secret, visitor string) string {
	return webhook.HMACSHA256Hex([]byte(secret), []byte(visitorTokenContext), []byte(visitor))
}

// CheckVisitor verifies that token was issued for visitor under secret.
func CheckVisitor(secret, visitor, token string) error {
	if !ValidVisitorID(visitor) {
		return fmt.Errorf("%w: malformed visitor id", ErrToken)
	}
	if !webhook.EqualHex(token, VisitorToken(secret, visitor)) {
		return fmt.Errorf("%w: token was not issued for %s", ErrToken, visitor)
	}
	return nil
}

// HostIdentity is an identity of the host site's logged-in user, signed by the host's backend
// with WEBCHAT_IDENTITY_SECRET and passed to the widget as data-identity-* attributes:
//
//	sig = hex(HMAC-SHA256(WEBCHAT_IDENTITY_SECRET, kind + "\n" + value + "\n" + ts))
//
// with ts the signing time in Unix seconds. The connector accepts it within
// WEBCHAT_IDENTITY_WINDOW of ts and adds it to the identities of the visitor's messages.
type HostIdentity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	TS    int64  `json:"ts"`
	Sig   string `json:"sig"`
}

// hostIdentityKinds are the identity kinds a host site may assert.
var hostIdentityKinds = map[string]bool{"member_id": true, "crm_id": true, "email": true, "phone": true}

// SignHostIdentity returns the signature a host backend puts in data-identity-sig.
func SignHostIdentity(secret, kind, value string, ts int64) string {
	return webhook.HMACSHA256Hex([]byte(secret), []byte(kind+"\n"+value+"\n"+strconv.FormatInt(ts, 10)))
}

// verify checks the signature and age of h and returns the identity it asserts, normalised.
func (h HostIdentity) verify(secret string, window time.Duration, region string, now time.Time) (Identity, error) {
	if secret == "" {
		return Identity{}, fmt.Errorf("%w: this connector accepts no host identities (WEBCHAT_IDENTITY_SECRET is unset)", ErrIdentity)
	}
	if !hostIdentityKinds[h.Kind] {
		return Identity{}, fmt.Errorf("%w: kind %q is not one of member_id, crm_id, email, phone", ErrIdentity, h.Kind)
	}
	if h.Value == "" || len(h.Value) > 256 {
		return Identity{}, fmt.Errorf("%w: value must be 1..256 bytes", ErrIdentity)
	}
	if !webhook.EqualHex(h.Sig, SignHostIdentity(secret, h.Kind, h.Value, h.TS)) {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, webhook.ErrSignature)
	}
	if _, err := webhook.CheckTimestamp(strconv.FormatInt(h.TS, 10), window, now); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	id := Identity{Kind: h.Kind, Value: h.Value}
	var err error
	switch h.Kind {
	case "phone":
		id.Value, err = NormalizePhone(h.Value, region)
	case "email":
		id.Value, err = NormalizeEmail(h.Value)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return id, nil
}
