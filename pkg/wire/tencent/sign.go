// Package tencent is the wire format of Tencent Cloud SMS (API 3.0, sms 2021-01-11) that both the
// sms connector and the sandbox simulator speak: the TC3-HMAC-SHA256 request signature and its
// verifier, the RFC 3986 encoder of its canonical query string, the SendSms request and
// response, the API error shape, and the two unsigned callbacks (reply and delivery status); and
// of the Tencent Cloud Contact Center (ccc.go): DescribeTelCdr and the CDR, recording and
// voicemail pushes the voice connector takes and the sandbox sends.
//
// The signature covers the exact body bytes and the exact Content-Type that is sent: the
// verifier takes the request and the body it read, never a re-marshalled struct.
package tencent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm names the signature in the Authorization header.
const Algorithm = "TC3-HMAC-SHA256"

// Header names of API 3.0.
const (
	HeaderAction    = "X-TC-Action"
	HeaderVersion   = "X-TC-Version"
	HeaderTimestamp = "X-TC-Timestamp"
	HeaderRegion    = "X-TC-Region"
	HeaderToken     = "X-TC-Token"
)

// Sentinels returned by Verify; the sandbox maps them to Tencent's AuthFailure.* codes.
var (
	// ErrMalformed: no or unparsable Authorization / X-TC-Timestamp (AuthFailure.InvalidAuthorization).
	ErrMalformed = errors.New("tencent: malformed authorization")
	// ErrSecretIDNotFound: unknown SecretId (AuthFailure.SecretIdNotFound).
	ErrSecretIDNotFound = errors.New("tencent: secret id not found")
	// ErrExpired: X-TC-Timestamp outside the window (AuthFailure.SignatureExpire).
	ErrExpired = errors.New("tencent: signature expired")
	// ErrSignature: the signature does not match (AuthFailure.SignatureFailure).
	ErrSignature = errors.New("tencent: signature does not match")
)

// PercentEncode encodes s with RFC 3986 rules (unreserved A-Z a-z 0-9 - _ . ~ kept, every other
// byte %XX in upper-case hex), as the canonical query string of a GET request requires.
func PercentEncode(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// CanonicalQueryString is the canonical query of a GET request: "k=v" pairs, both
// percent-encoded, sorted by key (then value), joined with "&". POST requests use "".
func CanonicalQueryString(q url.Values) string {
	pairs := make([]string, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, PercentEncode(k)+"="+PercentEncode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// SHA256Hex is the lower-case hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Date is the UTC date (YYYY-MM-DD) of a Unix timestamp: the credential scope's date. Beijing
// is eight hours ahead, so near midnight the two differ.
func Date(ts int64) string { return time.Unix(ts, 0).UTC().Format("2006-01-02") }

// CredentialScope is Date/service/tc3_request.
func CredentialScope(date, service string) string { return date + "/" + service + "/tc3_request" }

// CanonicalHeaders renders the signed headers of r as "name:value\n" lines, names as given
// (lower-case, sorted), values lower-cased and trimmed; host comes from the request's host.
func CanonicalHeaders(h http.Header, host string, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		v := h.Get(name)
		if name == "host" {
			v = host
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.ToLower(strings.TrimSpace(v)))
		b.WriteByte('\n')
	}
	return b.String()
}

// CanonicalRequest joins the six fields with "\n". canonicalHeaders ends with "\n", so an empty
// line precedes the signed header list.
func CanonicalRequest(method, canonicalURI, canonicalQuery, canonicalHeaders string, signed []string, hashedPayload string) string {
	return strings.Join([]string{strings.ToUpper(method), canonicalURI, canonicalQuery, canonicalHeaders,
		strings.Join(signed, ";"), hashedPayload}, "\n")
}

// StringToSign is TC3-HMAC-SHA256\ntimestamp\nscope\nhex(SHA256(canonicalRequest)).
func StringToSign(ts int64, scope, canonicalRequest string) string {
	return Algorithm + "\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + SHA256Hex([]byte(canonicalRequest))
}

// Signature derives the signing key (kDate = HMAC("TC3"+key, date), kService, kSigning) and
// returns hex(HMAC-SHA256(kSigning, stringToSign)).
func Signature(secretKey, date, service, stringToSign string) string {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

// Authorization renders the header (with a space after each comma).
func Authorization(secretID, scope string, signed []string, signature string) string {
	return Algorithm + " Credential=" + secretID + "/" + scope + ", SignedHeaders=" + strings.Join(signed, ";") + ", Signature=" + signature
}

// Signer signs API 3.0 requests of one service with one key pair.
type Signer struct {
	SecretID, SecretKey string
	// Service is the product ("sms"), the second element of the credential scope.
	Service string
	// SignedHeaders are the headers to sign, lower-case and sorted; default content-type;host,
	// the newer demos also sign x-tc-action.
	SignedHeaders []string
}

// Sign sets X-TC-Timestamp (to ts) and Authorization on req, whose body is body. The caller
// has set Content-Type (byte-identical to what is sent), X-TC-Action, X-TC-Version and
// X-TC-Region. The canonical URI is "/" and a POST's canonical query is empty, as the API
// requires; a GET's query is canonicalized from req.URL.
func (s Signer) Sign(req *http.Request, body []byte, ts int64) {
	signed := s.SignedHeaders
	if len(signed) == 0 {
		signed = []string{"content-type", "host"}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	query := ""
	if req.Method == http.MethodGet {
		query = CanonicalQueryString(req.URL.Query())
	}
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	cr := CanonicalRequest(req.Method, "/", query, CanonicalHeaders(req.Header, host, signed), signed, SHA256Hex(body))
	date := Date(ts)
	scope := CredentialScope(date, s.Service)
	req.Header.Set("Authorization", Authorization(s.SecretID, scope, signed, Signature(s.SecretKey, date, s.Service, StringToSign(ts, scope, cr))))
}

// Auth is a parsed Authorization header.
type Auth struct {
	SecretID, Date, Service string
	SignedHeaders           []string
	Signature               string
}

// ParseAuthorization parses "TC3-HMAC-SHA256 Credential=id/date/service/tc3_request,
// SignedHeaders=a;b, Signature=hex". Errors wrap ErrMalformed.
func ParseAuthorization(s string) (Auth, error) {
	rest, ok := strings.CutPrefix(s, Algorithm+" ")
	if !ok {
		return Auth{}, fmt.Errorf("%w: Authorization does not start with %q", ErrMalformed, Algorithm+" ")
	}
	var a Auth
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[k] {
			return Auth{}, fmt.Errorf("%w: Authorization element %q", ErrMalformed, part)
		}
		seen[k] = true
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 4 || f[0] == "" || f[2] == "" || f[3] != "tc3_request" {
				return Auth{}, fmt.Errorf("%w: Credential must be SecretId/Date/Service/tc3_request", ErrMalformed)
			}
			if _, err := time.Parse("2006-01-02", f[1]); err != nil {
				return Auth{}, fmt.Errorf("%w: Credential date %q is not YYYY-MM-DD", ErrMalformed, f[1])
			}
			a.SecretID, a.Date, a.Service = f[0], f[1], f[2]
		case "SignedHeaders":
			if v != "" {
				a.SignedHeaders = strings.Split(v, ";")
			}
		case "Signature":
			a.Signature = v
		default:
			return Auth{}, fmt.Errorf("%w: unknown Authorization element %q", ErrMalformed, k)
		}
	}
	if a.SecretID == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
		return Auth{}, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", ErrMalformed)
	}
	for i, h := range a.SignedHeaders {
		if h == "" || h != strings.ToLower(h) || i > 0 && a.SignedHeaders[i-1] >= h {
			return Auth{}, fmt.Errorf("%w: SignedHeaders must be lower-case, sorted and unique", ErrMalformed)
		}
	}
	return a, nil
}

// SecretFunc returns the SecretKey of a SecretId, or false when the id is unknown.
type SecretFunc func(secretID string) (secretKey string, ok bool)

// Verified is what Verify establishes; CanonicalRequest and StringToSign are the server's (set
// on ErrSignature too, for diagnostics).
type Verified struct {
	SecretID, CanonicalRequest, StringToSign string
	Timestamp                                int64
}

// Verify checks the TC3 signature of r (body already read) for service, as the API gateway
// does: a parsable Authorization signing at least content-type and host, the credential's
// service and date matching service and the UTC date of X-TC-Timestamp, the timestamp within
// window of now, a known SecretId and a matching signature. Errors: ErrMalformed,
// ErrSecretIDNotFound, ErrExpired, ErrSignature.
func Verify(r *http.Request, body []byte, service string, secretOf SecretFunc, now time.Time, window time.Duration) (Verified, error) {
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return Verified{}, err
	}
	ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return Verified{SecretID: a.SecretID}, fmt.Errorf("%w: X-TC-Timestamp must be Unix seconds", ErrMalformed)
	}
	v := Verified{SecretID: a.SecretID, Timestamp: ts}
	for _, h := range []string{"content-type", "host"} {
		if !contains(a.SignedHeaders, h) {
			return v, fmt.Errorf("%w: SignedHeaders must include %s", ErrMalformed, h)
		}
	}
	secret, ok := secretOf(a.SecretID)
	if !ok {
		return v, ErrSecretIDNotFound
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return v, fmt.Errorf("%w: timestamp is %s from server time (window %s)", ErrExpired, d.Round(time.Second), window)
	}
	query := ""
	if r.Method == http.MethodGet {
		query = CanonicalQueryString(r.URL.Query())
	}
	v.CanonicalRequest = CanonicalRequest(r.Method, "/", query, CanonicalHeaders(r.Header, r.Host, a.SignedHeaders), a.SignedHeaders, SHA256Hex(body))
	scope := CredentialScope(Date(ts), service)
	v.StringToSign = StringToSign(ts, scope, v.CanonicalRequest)
	if a.Service != service || a.Date != Date(ts) {
		return v, fmt.Errorf("%w: credential scope %s/%s/tc3_request, want %s", ErrSignature, a.Date, a.Service, scope)
	}
	if !hmac.Equal([]byte(a.Signature), []byte(Signature(secret, a.Date, service, v.StringToSign))) {
		return v, ErrSignature
	}
	return v, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
