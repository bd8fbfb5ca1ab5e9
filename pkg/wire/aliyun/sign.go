// Package aliyun is the wire format of Aliyun SMS (Dysmsapi 2017-05-25) and of the NLS speech
// transcriber (CreateToken, the SpeechTranscriber WebSocket: nls.go) that both the sms and voice
// connectors and the sandbox simulators speak: the two OpenAPI request signatures (RPC V1,
// HMAC-SHA1 over the percent-encoded query, and V3, ACS3-HMAC-SHA256 over a canonical request),
// their verifiers, the RFC 3986 encoder they share, the SendSms request and response, and the
// SmsUp / SmsReport HTTP batch pushes.
//
// Signatures are computed over the bytes as sent: a verifier takes the request and the body it
// read, never a re-marshalled struct. Every function here is pure; the stateful checks (timestamp
// window, nonce reuse) belong to the server that keeps the state.
package aliyun

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Sentinels returned by the verifiers. The sandbox maps them to Aliyun's error codes.
var (
	// ErrIncomplete: the request lacks a signature element (Aliyun: MissingSignature,
	// IncompleteSignature, MissingAccessKeyId ...).
	ErrIncomplete = errors.New("aliyun: incomplete signature")
	// ErrUnknownAccessKey: the AccessKeyId is not known (Aliyun: InvalidAccessKeyId.NotFound).
	ErrUnknownAccessKey = errors.New("aliyun: access key not found")
	// ErrSignature: the signature does not match (Aliyun: SignatureDoesNotMatch).
	ErrSignature = errors.New("aliyun: signature does not match")
)

// SecretFunc returns the AccessKeySecret of an AccessKeyId, or false when the id is unknown.
type SecretFunc func(accessKeyID string) (secret string, ok bool)

// Verified is what a verifier establishes about a request. StringToSign is the server's string
// to sign, which Aliyun echoes in a SignatureDoesNotMatch message; it is set on ErrSignature too.
type Verified struct {
	AccessKeyID  string
	StringToSign string
}

// PercentEncode encodes s with RFC 3986 rules, as Aliyun's signatures require: the unreserved
// characters A-Z a-z 0-9 - _ . ~ stay, every other byte of the UTF-8 encoding becomes %XX with
// upper-case hex (space is %20, * is %2A, ~ is not encoded).
func PercentEncode(s string) string {
	const hexUpper = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// CanonicalQuery returns params as Aliyun canonicalizes them: every key and value
// percent-encoded, "k=v" pairs sorted by encoded key (then value), joined with "&". Keys listed
// in exclude are left out (V1 excludes Signature).
func CanonicalQuery(params url.Values, exclude ...string) string {
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(params))
	for k, vs := range params {
		if contains(exclude, k) {
			continue
		}
		ek := PercentEncode(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, PercentEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- RPC signature V1 (HMAC-SHA1) ----

// StringToSignV1 is METHOD & %2F & percentEncode(canonical query without Signature).
func StringToSignV1(method string, params url.Values) string {
	return strings.ToUpper(method) + "&" + PercentEncode("/") + "&" + PercentEncode(CanonicalQuery(params, "Signature"))
}

// SignV1 returns the base64 V1 signature of params: HMAC-SHA1 with key secret + "&" over
// StringToSignV1. The caller adds it as the Signature parameter (url.Values.Encode and the
// query builders percent-encode it on the wire).
func SignV1(method string, params url.Values, secret string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(StringToSignV1(method, params)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyV1 checks the V1 signature of a request whose parameters (query and form body merged,
// already percent-decoded) are params. It returns ErrIncomplete, ErrUnknownAccessKey or
// ErrSignature. The caller checks Timestamp and SignatureNonce.
func VerifyV1(method string, params url.Values, secretOf SecretFunc) (Verified, error) {
	id, sig := params.Get("AccessKeyId"), params.Get("Signature")
	switch {
	case sig == "":
		return Verified{}, fmt.Errorf("%w: Signature is mandatory for this action", ErrIncomplete)
	case id == "":
		return Verified{}, fmt.Errorf("%w: AccessKeyId is mandatory for this action", ErrIncomplete)
	case params.Get("SignatureMethod") != "HMAC-SHA1":
		return Verified{}, fmt.Errorf("%w: SignatureMethod must be HMAC-SHA1", ErrIncomplete)
	}
	v := Verified{AccessKeyID: id, StringToSign: StringToSignV1(method, params)}
	secret, ok := secretOf(id)
	if !ok {
		return v, ErrUnknownAccessKey
	}
	if !hmac.Equal([]byte(sig), []byte(SignV1(method, params, secret))) {
		return v, ErrSignature
	}
	return v, nil
}

// ---- Signature V3 (ACS3-HMAC-SHA256) ----

// AlgorithmV3 names the V3 signature in the Authorization header.
const AlgorithmV3 = "ACS3-HMAC-SHA256"

// EmptySHA256 is the hex SHA-256 of an empty body (x-acs-content-sha256 of a bodiless request).
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Header names of the V3 scheme.
const (
	HeaderAction    = "x-acs-action"
	HeaderVersion   = "x-acs-version"
	HeaderDate      = "x-acs-date"
	HeaderNonce     = "x-acs-signature-nonce"
	HeaderContent   = "x-acs-content-sha256"
	HeaderAuthorize = "Authorization"
)

// SHA256Hex is the lower-case hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// SignedHeadersV3 returns the header names V3 signs for h: host, content-type when present and
// every x-acs-* header, lower-case and sorted.
func SignedHeadersV3(h http.Header) []string {
	names := []string{"host"}
	for k := range h {
		lk := strings.ToLower(k)
		if (lk == "content-type" || strings.HasPrefix(lk, "x-acs-")) && !contains(names, lk) {
			names = append(names, lk)
		}
	}
	sort.Strings(names)
	return names
}

// headerValue is the canonical value of header name: host from the request's host, others
// joined with "," and trimmed.
func headerValue(h http.Header, host, name string) string {
	if name == "host" {
		return strings.TrimSpace(host)
	}
	return strings.TrimSpace(strings.Join(h.Values(name), ","))
}

// CanonicalRequestV3 builds METHOD\nURI\nQUERY\nHEADERS\nSIGNED\nPAYLOAD, where HEADERS is one
// "name:value\n" line per signed header (so an empty line precedes SIGNED).
func CanonicalRequestV3(method, canonicalURI string, query url.Values, h http.Header, host string, signed []string, hashedPayload string) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(canonicalURI)
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(query))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(h, host, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(hashedPayload)
	return b.String()
}

// StringToSignV3 is "ACS3-HMAC-SHA256\n" + hex(SHA256(canonicalRequest)).
func StringToSignV3(canonicalRequest string) string {
	return AlgorithmV3 + "\n" + SHA256Hex([]byte(canonicalRequest))
}

// SignatureV3 is hex(HMAC-SHA256(secret, stringToSign)).
func SignatureV3(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// AuthorizationV3 renders the Authorization header (no spaces after the commas).
func AuthorizationV3(accessKeyID string, signed []string, signature string) string {
	return AlgorithmV3 + " Credential=" + accessKeyID + ",SignedHeaders=" + strings.Join(signed, ";") + ",Signature=" + signature
}

// CanonicalURI returns the canonical form of a request path: each segment RFC 3986-encoded,
// "/" kept; "" is "/".
func CanonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = PercentEncode(s)
	}
	return strings.Join(segs, "/")
}

// SignV3 signs req in place: it sets x-acs-content-sha256 to the hash of body and the
// Authorization header. The caller has set x-acs-action, x-acs-version, x-acs-date and
// x-acs-signature-nonce (and content-type, if any). canonicalURI is the path as the vendor sees
// it ("/" for RPC-style APIs such as SendSms), which differs from req.URL.Path when the API base
// has a path prefix (the sandbox mounts Aliyun under /sandbox/aliyun).
func SignV3(req *http.Request, body []byte, accessKeyID, secret, canonicalURI string) {
	hashed := SHA256Hex(body)
	req.Header.Set(HeaderContent, hashed)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	signed := SignedHeadersV3(req.Header)
	cr := CanonicalRequestV3(req.Method, canonicalURI, req.URL.Query(), req.Header, host, signed, hashed)
	req.Header.Set(HeaderAuthorize, AuthorizationV3(accessKeyID, signed, SignatureV3(secret, StringToSignV3(cr))))
}

// AuthV3 is a parsed V3 Authorization header.
type AuthV3 struct {
	AccessKeyID   string
	SignedHeaders []string
	Signature     string
}

// ParseAuthorizationV3 parses "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..".
// Errors wrap ErrIncomplete.
func ParseAuthorizationV3(s string) (AuthV3, error) {
	rest, ok := strings.CutPrefix(s, AlgorithmV3+" ")
	if !ok {
		return AuthV3{}, fmt.Errorf("%w: Authorization does not start with %q", ErrIncomplete, AlgorithmV3+" ")
	}
	var a AuthV3
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[k] {
			return AuthV3{}, fmt.Errorf("%w: Authorization element %q", ErrIncomplete, part)
		}
		seen[k] = true
		switch k {
		case "Credential":
			a.AccessKeyID = v
		case "SignedHeaders":
			if v != "" {
				a.SignedHeaders = strings.Split(v, ";")
			}
		case "Signature":
			a.Signature = v
		default:
			return AuthV3{}, fmt.Errorf("%w: unknown Authorization element %q", ErrIncomplete, k)
		}
	}
	if a.AccessKeyID == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
		return AuthV3{}, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", ErrIncomplete)
	}
	for i, h := range a.SignedHeaders {
		if h == "" || h != strings.ToLower(h) || i > 0 && a.SignedHeaders[i-1] >= h {
			return AuthV3{}, fmt.Errorf("%w: SignedHeaders must be lower-case, sorted and unique", ErrIncomplete)
		}
	}
	return a, nil
}

// requiredV3 are the headers a V3 request must sign.
var requiredV3 = []string{"host", HeaderAction, HeaderContent, HeaderDate, HeaderNonce, HeaderVersion}

// VerifyV3 checks the V3 signature of r, whose body the caller has read into body.
// canonicalURI is the path as the vendor sees it (see SignV3). The payload hash is computed from
// body, not taken from the header, so a body changed in transit fails as ErrSignature. Errors:
// ErrIncomplete, ErrUnknownAccessKey, ErrSignature. The caller checks x-acs-date and the nonce.
func VerifyV3(r *http.Request, body []byte, canonicalURI string, secretOf SecretFunc) (Verified, error) {
	a, err := ParseAuthorizationV3(r.Header.Get(HeaderAuthorize))
	if err != nil {
		return Verified{}, err
	}
	for _, h := range requiredV3 {
		if !contains(a.SignedHeaders, h) {
			return Verified{AccessKeyID: a.AccessKeyID}, fmt.Errorf("%w: header %s must be signed", ErrIncomplete, h)
		}
	}
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-acs-") && !contains(a.SignedHeaders, lk) {
			return Verified{AccessKeyID: a.AccessKeyID}, fmt.Errorf("%w: header %s is present but not signed", ErrIncomplete, lk)
		}
	}
	cr := CanonicalRequestV3(r.Method, canonicalURI, r.URL.Query(), r.Header, r.Host, a.SignedHeaders, SHA256Hex(body))
	v := Verified{AccessKeyID: a.AccessKeyID, StringToSign: StringToSignV3(cr)}
	secret, ok := secretOf(a.AccessKeyID)
	if !ok {
		return v, ErrUnknownAccessKey
	}
	if !hmac.Equal([]byte(a.Signature), []byte(SignatureV3(secret, v.StringToSign))) {
		return v, ErrSignature
	}
	return v, nil
}
