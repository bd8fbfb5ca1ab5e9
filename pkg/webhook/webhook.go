// Package webhook holds the checks every vendor webhook shares: HMAC signatures compared in
// constant time, the timestamp window, and the sentinels connectors return so the HTTP layer
// answers with the right status and reason. It also holds that HTTP layer's pieces, for
// pkg/connector's webhook flow and for routes a connector serves itself (a WeCom callback, the
// web chat API): ReadBody caps a body, Status maps an error to its status (sentinels, or
// Reject for any other), Fail logs and answers a refusal, WriteJSON and WriteNotStored answer.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinels returned by verifiers; pkg/connector maps them to HTTP statuses.
var (
	ErrSignature = errors.New("bad signature")            // 401
	ErrExpired   = errors.New("timestamp outside window") // 401
	ErrMalformed = errors.New("malformed request")        // 400
	// ErrUnavailable is a transient failure while handling a valid request (a state lookup, a
	// pull from the vendor): 503 with Retry-After, so the vendor delivers it again.
	ErrUnavailable = errors.New("temporarily unavailable") // 503
)

// HMACSHA256Hex returns the lower-case hex HMAC-SHA256 of the concatenated parts.
func HMACSHA256Hex(secret []byte, parts ...[]byte) string {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// EqualHex compares two hex signatures in constant time.
func EqualHex(got, want string) bool { return hmac.Equal([]byte(got), []byte(want)) }

// CheckTimestamp parses a Unix-seconds timestamp and checks it is within window of now (either
// side, to allow for clock skew). It returns an error wrapping ErrMalformed or ErrExpired.
func CheckTimestamp(ts string, window time.Duration, now time.Time) (time.Time, error) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrMalformed, ts)
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > window || d < -window {
		return t, fmt.Errorf("%w: timestamp %s is %s from now (window %s)", ErrExpired, t.UTC().Format(time.RFC3339), d.Round(time.Second), window)
	}
	return t, nil
}
