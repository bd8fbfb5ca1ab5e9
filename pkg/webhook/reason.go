package webhook

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// internals mark where an error message stops being ours and becomes a library's: a decoder's
// wording with Go type names, a driver's, the runtime's, a source path. Nothing from the first
// of them on is sent to a client.
var internals = []string{
	"json: ", "xml: ", "XML syntax error", "invalid character", "unexpected end of JSON", "cannot unmarshal", "Go struct field", "Go value of type",
	"pgx", "pgconn", "SQLSTATE", "sql: ", "runtime", "goroutine ", "panic", ".go:", "strconv.", "nats: ", "nats.go",
	"context deadline exceeded", "context canceled", "dial tcp", "read tcp", "write tcp", "open /", "stat /", "http2:",
	"illegal base64", "go-jose", "square/go-jose", "crypto/", "x509:", "tls:", "base64.", "unexpected EOF",
}

// ClientReason is the reason a client is told for err: err's message up to the first library
// internal it carries (a decoder's, a driver's, the runtime's, a file path), completed by what a
// client can act on when a decoder failed (not valid JSON at byte N, field F has the wrong type).
// Handlers log err itself; Fail does.
func ClientReason(err error) string {
	if err == nil {
		return ""
	}
	prefix, cut := clientPrefix(err.Error())
	if !cut {
		return prefix
	}
	detail := decodeDetail(err)
	switch {
	case prefix != "" && detail != "":
		return prefix + ": " + detail
	case prefix != "":
		return prefix
	case detail != "":
		return detail
	}
	return "malformed request"
}

// ClientText is msg up to the first library internal it carries, for a reason already turned
// into text ("malformed request" if nothing of it is left).
func ClientText(msg string) string {
	prefix, cut := clientPrefix(msg)
	if cut && prefix == "" {
		return "malformed request"
	}
	return prefix
}

// clientPrefix returns msg up to the first library internal, and whether it had one.
func clientPrefix(msg string) (string, bool) {
	cut := -1
	for _, m := range internals {
		if i := strings.Index(msg, m); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return msg, false
	}
	return strings.TrimRight(strings.TrimSpace(msg[:cut]), ":;,- "), true
}

// decodeDetail says what was wrong with a body a decoder refused, in words a client can act on.
func decodeDetail(err error) string {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
		xe *xml.SyntaxError
		ne *strconv.NumError
	)
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type (got a JSON %s)", te.Field, te.Value)
		}
		return fmt.Sprintf("a value has the wrong type (got a JSON %s)", te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &xe):
		return fmt.Sprintf("not valid XML (line %d)", xe.Line)
	case errors.As(err, &ne):
		return fmt.Sprintf("%q is not a number", ne.Num)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the body ends too early"
	}
	if _, f, ok := strings.Cut(err.Error(), "unknown field "); ok {
		return "unknown field " + f
	}
	return ""
}
