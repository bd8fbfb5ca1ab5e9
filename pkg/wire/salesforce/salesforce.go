// Package salesforce is the wire format of the Salesforce REST API that both the crm connector
// and the sandbox simulator speak (vendor reference §6, vectors §6):
//
//   - the OAuth 2.0 client-credentials token response and its `signature`
//     (Base64(HMAC-SHA256(client_secret, id + issued_at))), see [TokenSignature];
//   - the REST error body ([APIError], [ParseErrors]) with sentinels matched by errorCode, so that
//     errors.Is(err, ErrInvalidSession) holds for a decoded 401 as for a locally built one;
//   - the query response ([QueryResponse], [Record]) of GET /services/data/vXX.X/query;
//   - SOQL: string literals escaped and quoted ([Quote]), and a parser of the SOQL subset the
//     connector emits and the simulator answers ([ParseSOQL]); the connector's Contact lookup
//     ([ContactQuery]) is built from them;
//   - phones: the formats Salesforce keeps a phone in as typed ([PhoneVariants]) and their
//     normalisation back to E.164 ([NormalizePhone]).
//
// Every function here is pure and safe for concurrent use.
package salesforce

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Paths of the REST API below the My Domain / instance URL.
const (
	// TokenPath is the OAuth 2.0 token endpoint.
	TokenPath = "/services/oauth2/token"
	// DataPrefix starts every REST data path: DataPrefix + version + "/query".
	DataPrefix = "/services/data/"
	// DefaultAPIVersion is the API version the connector asks for unless configured.
	DefaultAPIVersion = "v60.0"
)

var versionRE = regexp.MustCompile(`^v[1-9][0-9]{1,2}\.[0-9]$`)

// ValidAPIVersion reports whether v looks like a REST API version ("v60.0").
func ValidAPIVersion(v string) bool { return versionRE.MatchString(v) }

// QueryPath is the path of the query resource of API version v ("/services/data/v60.0/query").
func QueryPath(v string) string { return DataPrefix + v + "/query" }

// TokenResponse is the body of a successful token request.
type TokenResponse struct {
	AccessToken    string `json:"access_token"`
	Signature      string `json:"signature"`
	Scope          string `json:"scope,omitempty"`
	InstanceURL    string `json:"instance_url"`
	APIInstanceURL string `json:"api_instance_url,omitempty"`
	ID             string `json:"id"`
	TokenType      string `json:"token_type"`
	IssuedAt       string `json:"issued_at"` // epoch milliseconds, as a string
}

// OAuthError is the body of a failed token request (HTTP 400): {"error", "error_description"}.
type OAuthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string { return "salesforce oauth: " + e.Code + ": " + e.Description }

// OAuth error codes of the token endpoint.
const (
	OAuthInvalidClient   = "invalid_client"
	OAuthInvalidGrant    = "invalid_grant"
	OAuthUnsupportedType = "unsupported_grant_type"
	OAuthInvalidRequest  = "invalid_request"
)

// TokenSignature returns Base64(HMAC-SHA256(key=clientSecret, id + issuedAt)), the `signature`
// of a token response. A client recomputes it to confirm the identity URL was not tampered with.
func TokenSignature(clientSecret, id, issuedAt string) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(id))
	m.Write([]byte(issuedAt))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrTokenSignature is returned by VerifyTokenSignature for a signature that does not match.
var ErrTokenSignature = errors.New("salesforce: token response signature does not match")

// VerifyTokenSignature checks the signature of a token response against clientSecret, in
// constant time. It returns ErrTokenSignature (wrapped) on mismatch or when a part is missing.
func VerifyTokenSignature(clientSecret, id, issuedAt, signature string) error {
	if id == "" || issuedAt == "" || signature == "" {
		return fmt.Errorf("%w: id, issued_at and signature are required", ErrTokenSignature)
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrTokenSignature)
	}
	want, _ := base64.StdEncoding.DecodeString(TokenSignature(clientSecret, id, issuedAt))
	if !hmac.Equal(got, want) {
		return ErrTokenSignature
	}
	return nil
}

// REST error codes the connector distinguishes (errorCode of the error body).
const (
	CodeInvalidSession    = "INVALID_SESSION_ID"
	CodeMalformedQuery    = "MALFORMED_QUERY"
	CodeInvalidField      = "INVALID_FIELD"
	CodeInvalidType       = "INVALID_TYPE"
	CodeRequestLimit      = "REQUEST_LIMIT_EXCEEDED"
	CodeServerUnavailable = "SERVER_UNAVAILABLE"
	CodeUnknownException  = "UNKNOWN_EXCEPTION"
	CodeNotFound          = "NOT_FOUND"
)

// Sentinels matched by errorCode: errors.Is(err, ErrInvalidSession) holds for any *Error with
// that code, wherever it was built.
var (
	ErrInvalidSession = &Error{Code: CodeInvalidSession}
	ErrMalformedQuery = &Error{Code: CodeMalformedQuery}
	ErrRequestLimit   = &Error{Code: CodeRequestLimit}
)

// APIError is one element of a REST error body: [{"message", "errorCode", "fields"}].
type APIError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

// Error is a failed REST call: the HTTP status and the first error of the body.
type Error struct {
	Status  int    // HTTP status (0 for a sentinel)
	Code    string // errorCode
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("salesforce: %s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("salesforce: %s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Is matches another *Error by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrMalformedBody is wrapped when a response body is not what the API documents.
var ErrMalformedBody = errors.New("salesforce: malformed response body")

// maxBody bounds what the parsers accept (a query batch of 2000 wide records stays far below).
const maxBody = 16 << 20

// ParseErrors decodes the error body of a non-2xx REST response with HTTP status into an *Error.
// A body that is not the documented list still yields an *Error (code UNKNOWN_EXCEPTION, the
// body's start as message), so callers always get the status.
func ParseErrors(status int, body []byte) *Error {
	var list []APIError
	if len(body) <= maxBody && json.Unmarshal(body, &list) == nil && len(list) > 0 && list[0].ErrorCode != "" {
		return &Error{Status: status, Code: list[0].ErrorCode, Message: list[0].Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return &Error{Status: status, Code: CodeUnknownException, Message: strings.ToValidUTF8(msg, "?")}
}

// ErrorBody renders errs as the REST error body.
func ErrorBody(errs ...APIError) []byte {
	b, _ := json.Marshal(errs)
	return b
}

// QueryResponse is the body of a query: a batch of records and, when Done is false, the URL of
// the next batch.
type QueryResponse struct {
	TotalSize      int      `json:"totalSize"`
	Done           bool     `json:"done"`
	NextRecordsURL string   `json:"nextRecordsUrl,omitempty"`
	Records        []Record `json:"records"`
}

// Record is one sObject of a query result: field name → value, with "attributes" holding its
// type and URL, and relationship fields (Account) as nested records.
type Record map[string]any

// Type returns attributes.type ("Contact").
func (r Record) Type() string {
	a, _ := r["attributes"].(map[string]any)
	s, _ := a["type"].(string)
	return s
}

// String returns the field at path ("Email", "Account.Name") as a string: "" for null, missing
// or non-scalar values; numbers and booleans in their JSON form.
func (r Record) String(path string) string {
	var cur any = map[string]any(r)
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// ParseQueryResponse decodes a query response body. It checks the documented shape: a records
// array of objects each with attributes.type, totalSize >= len(records), and a nextRecordsUrl
// under /services/data/ exactly when done is false. Errors wrap ErrMalformedBody.
func ParseQueryResponse(body []byte) (*QueryResponse, error) {
	if len(body) > maxBody {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformedBody, len(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw struct {
		TotalSize      *int             `json:"totalSize"`
		Done           *bool            `json:"done"`
		NextRecordsURL string           `json:"nextRecordsUrl"`
		Records        []map[string]any `json:"records"`
	}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedBody, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformedBody)
	}
	switch {
	case raw.TotalSize == nil || raw.Done == nil || raw.Records == nil:
		return nil, fmt.Errorf("%w: totalSize, done and records are required", ErrMalformedBody)
	case *raw.TotalSize < len(raw.Records):
		return nil, fmt.Errorf("%w: totalSize %d < %d records", ErrMalformedBody, *raw.TotalSize, len(raw.Records))
	case !*raw.Done && !strings.HasPrefix(raw.NextRecordsURL, DataPrefix):
		return nil, fmt.Errorf("%w: done is false without a nextRecordsUrl under %s", ErrMalformedBody, DataPrefix)
	case *raw.Done && raw.NextRecordsURL != "":
		return nil, fmt.Errorf("%w: nextRecordsUrl on the last batch", ErrMalformedBody)
	}
	out := &QueryResponse{TotalSize: *raw.TotalSize, Done: *raw.Done, NextRecordsURL: raw.NextRecordsURL,
		Records: make([]Record, len(raw.Records))}
	for i, r := range raw.Records {
		if r == nil || Record(r).Type() == "" {
			return nil, fmt.Errorf("%w: record %d has no attributes.type", ErrMalformedBody, i)
		}
		out.Records[i] = r
	}
	return out, nil
}
