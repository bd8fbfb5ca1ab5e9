package sim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// The pieces below are what several simulators do the same way; each vendor keeps its own wire
// (paths, bodies, headers, signatures) and passes it in.

// VendorLog is env's logger for one simulator (attribute vendor), or a discarding one.
func (e *Env) VendorLog(vendor string) *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log.With("vendor", vendor)
}

// WriteJSON answers status with v as JSON under the vendor's own Content-Type (vendors differ
// in spelling it, and connectors may read it).
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteBody answers status with body, already encoded, under the vendor's Content-Type.
func WriteBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// FaultStatus reads the HTTP status of an injected fault code of a REST vendor: "" is 500,
// a status (400-599, optionally "http_NNN") is itself, and "429:<s>" is 429 with Retry-After
// <s>. retryAfter is "" except for 429 ("1" by default).
func FaultStatus(code string) (status int, retryAfter string) {
	status = http.StatusInternalServerError
	c, secs, hasSecs := strings.Cut(code, ":")
	if n, err := strconv.Atoi(strings.TrimPrefix(c, "http_")); err == nil && n >= 400 && n <= 599 {
		status = n
	}
	if status == http.StatusTooManyRequests {
		retryAfter = "1"
		if hasSecs {
			retryAfter = secs
		}
	}
	return status, retryAfter
}

// Processed wraps a route's fault renderer with the lost-answer faults: "processed" (or
// "processed_<code>") lets h do the work and then answers fail's "" (or <code>);
// "processed_drop" does the work and drops the connection without an answer. Other codes go to
// fail as they are.
func Processed(h http.HandlerFunc, fail func(http.ResponseWriter, *http.Request, string)) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, code string) {
		if rest, ok := strings.CutPrefix(code, "processed"); ok {
			h(httptest.NewRecorder(), r) // the vendor did the work; its answer is lost
			if rest == "_drop" {
				panic(http.ErrAbortHandler) // net/http closes the connection without a response
			}
			code = strings.TrimPrefix(rest, "_")
		}
		fail(w, r, code)
	}
}

// RequireAuthorization serves next only to requests whose Authorization header is want
// (compared in constant time); others get refuse, which answers in the vendor's shape.
func RequireAuthorization(want string, next, refuse http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			refuse(w, r)
			return
		}
		next(w, r)
	}
}

// WebhookAttempts is how often Deliver tries a webhook.
const WebhookAttempts = 3

// Deliver POSTs a vendor webhook body to url with client, up to WebhookAttempts times (waiting
// 200 ms, then 400 ms), until the connector answers 2xx. header sets the vendor's headers of
// each attempt (identifier, timestamp, signature), so a timestamped signature is fresh. It
// returns the last failure.
func Deliver(ctx context.Context, client *http.Client, url string, body []byte, header func(http.Header)) error {
	var last error
	for attempt := range WebhookAttempts {
		if attempt > 0 && !Sleep(ctx, time.Duration(attempt)*200*time.Millisecond) {
			return errors.Join(last, ctx.Err())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		header(req.Header)
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("webhook answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return last
}

// APIError is a vendor error answer: its code and message.
type APIError struct{ Code, Message string }

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Messages are a vendor's messages for its error codes.
type Messages map[string]string

// With returns m and more in one table (more wins on a code in both): a product's codes on top
// of its vendor's gateway codes.
func (m Messages) With(more Messages) Messages {
	out := make(Messages, len(m)+len(more))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// Err is the error of code with the vendor's message (the code itself when it has none), detail
// appended.
func (m Messages) Err(code string, detail ...string) *APIError {
	msg := m[code]
	if msg == "" {
		msg = code
	}
	if len(detail) > 0 && detail[0] != "" {
		msg += " " + detail[0]
	}
	return &APIError{Code: code, Message: msg}
}

// AddRepeated queues item like Add and, with probability share, queues it once more a little
// later (Delay plus up to Delay again), as vendors push some receipts twice.
func (p *Pusher[T]) AddRepeated(item T, share float64) {
	p.Add(item)
	if share > 0 && rand.Float64() < share {
		p.g.Go(func(ctx context.Context) {
			if Sleep(ctx, p.o.Delay+time.Duration(rand.Int64N(int64(p.o.Delay)+1))) {
				p.Add(item)
			}
		})
	}
}

// SMSParts is the number of billed SMS of a templated message, approximated from the sign
// (shown in 【】) and the parameter values: 70 characters fit one, longer messages go in parts
// of 67.
func SMSParts(sign string, params []string) int {
	n := len([]rune(sign)) + 2
	for _, p := range params {
		n += len([]rune(p))
	}
	if n <= 70 {
		return 1
	}
	return (n + 66) / 67
}

// AllDigits reports whether s is a non-empty run of ASCII digits.
func AllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
